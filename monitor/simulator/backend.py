"""What the simulator's HTTP layer needs from a contact centre, whichever mode drives it.

Both the random centre (`centre.py`) and the scripted one (`scripted.py`) implement `Centre`;
the app renders their plain data as Puzzel JSON. Pure data and protocols; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from monitor.core.states import AgentState
from monitor.engine.model import Segment

# Stable ids for the pause types both modes use; other names get ids after these, sorted by name.
DEFAULT_PAUSE_TYPES: dict[str, int] = {
    "Break": 4812,
    "Lunch": 4813,
    "Meeting": 4814,
    "Training": 4815,
    "Coaching": 4816,
    "Toilet": 4817,
}
_FIRST_EXTRA_PAUSE_TYPE_ID = 4830


def pause_type_ids(names: Sequence[str] = ()) -> dict[str, int]:
    """The default pause types plus `names`, each with a stable id."""
    ids = dict(DEFAULT_PAUSE_TYPES)
    for i, name in enumerate(sorted(set(names) - set(ids))):
        ids[name] = _FIRST_EXTRA_PAUSE_TYPE_ID + i
    return ids


@dataclass(frozen=True, slots=True)
class UserGroup:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class User:
    id: int | str
    group_id: int
    group_name: str
    first_name: str
    last_name: str
    user_name: str

    @property
    def agent_id(self) -> str:
        return str(self.id)


@dataclass(frozen=True, slots=True)
class SystemQueue:
    id: int
    key: str
    description: str
    service_id: int


@dataclass(frozen=True, slots=True)
class VisualQueue:
    id: int | str
    description: str
    queues: tuple[SystemQueue, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentTicker:
    """One agent's 'today' figures (reset at local midnight)."""

    calls_offered: int = 0
    calls_answered: int = 0
    logged_on_seconds: float = 0.0
    pause_seconds: Mapping[str, float] = field(default_factory=dict)  # by pause type name
    session_start: datetime | None = None  # the current (or last) logon, for sessionTime
    queue_offered: Mapping[str, int] = field(default_factory=dict)  # by visual queue id
    queue_answered: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccessPointTicker:
    access_point: str
    description: str
    requests_offered: int
    requests_answered: int


class Centre(Protocol):
    """A simulated contact centre that the HTTP app can serve."""

    timezone: ZoneInfo

    def advance_to(self, t: datetime) -> None:
        """Bring the model up to `t` (never backwards)."""

    def user_groups(self) -> Sequence[UserGroup]: ...

    def users(self) -> Sequence[User]: ...

    def pause_types(self) -> Mapping[str, int]:
        """Pause type name -> id."""

    def visual_queues(self) -> Sequence[VisualQueue]: ...

    def agent_states(self) -> dict[str, tuple[AgentState, datetime]]:
        """agent id -> (state, since), at the time the model was last advanced to."""

    def agent_tickers(self) -> dict[str, AgentTicker]: ...

    def agent_call_counts(self) -> dict[str, tuple[int, int]]:
        """agent id -> (calls offered, calls answered) today: the cheap part of the tickers,
        which the user-group state call (polled every few seconds) needs."""

    def queue_fields(self) -> dict[str, dict[str, float]]:
        """visual queue id -> the 4.2 state-information fields (numbers) now."""

    def access_points(self) -> Sequence[AccessPointTicker]: ...

    def schedules(self) -> list[Segment]:
        """The schedules the agents follow (engine segments, UTC)."""
