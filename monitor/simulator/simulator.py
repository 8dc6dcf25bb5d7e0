"""The simulator: a contact centre (random or scripted) plus what the HTTP side needs around it:
credentials, issued tokens, fault injection, the clock, and a log of the requests served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from monitor.core.clock import Clock, SystemClock, VirtualClock
from monitor.core.states import AgentState
from monitor.engine.model import Segment
from monitor.simulator.auth import Credentials, TokenStore
from monitor.simulator.backend import Centre
from monitor.simulator.centre import Behaviour, CentreConfig, RandomCentre
from monitor.simulator.faults import Faults
from monitor.simulator.profiles import DEFAULT_PROFILE, Profile, check_profile
from monitor.simulator.scenario import Scenario
from monitor.simulator.scripted import ScriptedCentre


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the simulator answered."""

    at: datetime  # simulator clock
    monotonic: float  # simulator clock
    method: str
    path: str
    # name in monitor.puzzel.endpoints.ENDPOINTS, even where the profile answers it 404 as
    # unknown; None if no route matched
    endpoint: str | None
    status: int
    user_group_name: str | None  # the userGroupName query parameter, if sent


class Simulator:
    """A simulated Puzzel tenant. Serve it with `monitor.simulator.app.create_app`.

    `profile` says which shapes it serves: `full` (everything the client knows) or `public`
    (only what public evidence shows; see `monitor.simulator.profiles`).
    """

    def __init__(
        self,
        centre: Centre,
        *,
        credentials: Credentials | None = None,
        faults: Faults | None = None,
        clock: Clock | None = None,
        profile: Profile | str = DEFAULT_PROFILE,
    ) -> None:
        self.centre = centre
        self.profile: Profile = check_profile(profile)
        self.credentials = credentials or Credentials()
        self.faults = faults or Faults()
        self.clock: Clock = clock or SystemClock()
        self.tokens = TokenStore()
        self.requests: list[RequestRecord] = []

    @classmethod
    def random(
        cls,
        *,
        agents: int = 200,
        groups: int = 5,
        queues: int = 4,
        seed: int = 1,
        timezone: str = "Europe/Oslo",
        behaviour: Behaviour | None = None,
        clock: Clock | None = None,
        credentials: Credentials | None = None,
        faults: Faults | None = None,
        profile: Profile | str = DEFAULT_PROFILE,
    ) -> Simulator:
        """A random-mode centre starting at `clock.now()`."""
        clock = clock or SystemClock()
        config = CentreConfig(
            agents=agents,
            groups=groups,
            queues=queues,
            seed=seed,
            timezone=timezone,
            behaviour=behaviour or Behaviour(),
        )
        centre = RandomCentre(config, start=clock.now())
        return cls(centre, credentials=credentials, faults=faults, clock=clock, profile=profile)

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        *,
        clock: Clock | None = None,
        credentials: Credentials | None = None,
        faults: Faults | None = None,
        profile: Profile | str = DEFAULT_PROFILE,
    ) -> Simulator:
        """A scripted centre playing `scenario`; by default on a VirtualClock at its start.

        The credentials' customer key is the scenario's.
        """
        base = credentials or Credentials()
        creds = Credentials(
            customer_key=scenario.customer_key,
            user_id=base.user_id,
            user_name=base.user_name,
            password=base.password,
            client_id=base.client_id,
            client_secret=base.client_secret,
        )
        centre = ScriptedCentre(scenario)
        return cls(
            centre,
            credentials=creds,
            faults=faults,
            clock=clock or VirtualClock(scenario.start),
            profile=profile,
        )

    @property
    def timezone(self) -> ZoneInfo:
        return self.centre.timezone

    @property
    def customer_key(self) -> str:
        return self.credentials.customer_key

    def advance_to(self, t: datetime | None = None) -> None:
        """Bring the centre up to `t` (default: the clock's now)."""
        self.centre.advance_to(t if t is not None else self.clock.now())

    # ground truth, as of the clock's now

    def agent_states(self) -> dict[str, tuple[AgentState, datetime]]:
        """agent id -> (state, since)."""
        self.advance_to()
        return self.centre.agent_states()

    def queue_figures(self) -> dict[str, dict[str, float]]:
        """visual queue id -> the visual-queue state information fields."""
        self.advance_to()
        return self.centre.queue_fields()

    def schedules(self) -> list[Segment]:
        """The schedules the agents follow, as engine segments."""
        return self.centre.schedules()

    def revoke_tokens(self, *, sessions: bool = False) -> int:
        """Revoke every issued access token (and the LogIn refresh sessions, if asked)."""
        return self.tokens.revoke_all(sessions=sessions)

    def requests_for(self, endpoint: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.endpoint == endpoint]
