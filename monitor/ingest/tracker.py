"""State-entry times ("since") for each agent of one tenant, derived from poll-to-poll transitions.

Puzzel's per-group state call says what state each agent is in, not since when. So:

- an agent seen in a new state (or seen for the first time) entered it at the latest at the time of
  that poll: `since` = that poll's time, `since_exact` = False (the true entry lies between the
  previous poll and this one; the tracker cannot see a state that came and went between polls);
- while the state stays the same, `since` is kept from poll to poll;
- where a per-user status duration was fetched (`correct`), `since` = fetch time - duration and
  `since_exact` = True; a row that carries its own duration is exact at once;
- an agent missing from every group that answered this cycle is forgotten; agents of groups that
  did not answer are kept as they were.

Pure bookkeeping: no I/O, no clock (times come with the polls). `export_state()` /
`import_state()` round-trip through plain JSON-able dicts so a restart keeps the "since" values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import compress, count
from operator import is_not
from typing import Any

from monitor.core.snapshots import AgentObservation, AgentSnapshot
from monitor.core.states import AgentState, StateKind

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One agent as one group poll reported it, before the tracker adds `since`."""

    agent_id: str
    name: str
    team: str
    state: AgentState
    calls_offered: int = 0
    calls_answered: int = 0
    status_duration_seconds: float | None = None  # if the group call carries one


@dataclass(frozen=True, slots=True)
class GroupPoll:
    """The answer of one group's state call in a cycle."""

    team: str
    taken_at: datetime
    rows: Sequence[AgentRow]


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What `observe_cycle` learned: the snapshots, and which agents changed state."""

    snapshots: tuple[AgentSnapshot, ...]
    changed: tuple[str, ...]  # agent ids in a new state (or new), in poll order
    appeared: tuple[str, ...]
    disappeared: tuple[str, ...]


class StateTracker:
    """Per-tenant tracker of agent states and their entry times."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self._agents: dict[str, AgentObservation] = {}
        # agent ids per team, rebuilt after a change of membership: snapshot() is called for
        # every team every cycle, and filtering all agents per team is O(agents x teams)
        self._teams: dict[str, list[str]] | None = None
        self._snap_time: dict[str, datetime] = {}  # team -> taken_at of its latest poll
        # each team's agents as its latest snapshot held them; a team whose observations
        # changed since is in _stale (snapshots of unchanged teams share their tuple)
        self._tuples: dict[str, tuple[AgentObservation, ...]] = {}
        self._stale: set[str] = set()
        self._snaps: dict[str, AgentSnapshot] = {}  # each team's latest snapshot
        # The previous cycle's rows per team, in poll order, when the next cycle may look only
        # at the rows that are not the very same objects (None: it looks at every row). An
        # unchanged row (the pollers keep the AgentRow of an unchanged Puzzel row) leaves its
        # agent's observation as it is: the observation says what the row says, and only
        # name_pause changes what it says without a row (those agents are in _renamed).
        # (tuples: a caller may refill the list it passed)
        self._last: dict[str, tuple[AgentRow, ...]] | None = None
        self._renamed: set[str] = set()

    def __len__(self) -> int:
        return len(self._agents)

    def get(self, agent_id: str) -> AgentObservation | None:
        return self._agents.get(agent_id)

    def agents(self) -> list[AgentObservation]:
        return list(self._agents.values())

    def observe_cycle(self, polls: Iterable[GroupPoll]) -> CycleResult:
        """Fold one cycle's group answers into the tracked states."""
        polls = list(polls)
        todo = self._changed_rows(polls)
        if todo is None:
            changed, appeared, gone = self._fold_all(polls)
        else:
            changed, appeared, gone = self._fold_changed(polls, todo), [], []
        return CycleResult(
            snapshots=tuple(self.snapshot(p.team, p.taken_at) for p in polls),
            changed=tuple(changed),
            appeared=tuple(appeared),
            disappeared=tuple(gone),
        )

    def _fold_all(self, polls: list[GroupPoll]) -> tuple[list[str], list[str], list[str]]:
        """Every row of the cycle: (changed, appeared, gone) agent ids."""
        answered = {p.team for p in polls}
        seen: dict[str, AgentObservation] = {}
        changed: list[str] = []
        appeared: list[str] = []
        duplicates = False
        for poll in polls:
            for row in poll.rows:
                if row.agent_id in seen:
                    duplicates = True
                    continue  # listed by two groups: the first answer wins
                previous = self._agents.get(row.agent_id)
                obs = self._next(previous, row, poll.taken_at)
                if previous is None:
                    appeared.append(row.agent_id)
                if previous is None or previous.state != row.state:
                    changed.append(row.agent_id)
                seen[row.agent_id] = obs
            self._snap_time[poll.team] = poll.taken_at
        gone = [
            aid for aid, obs in self._agents.items() if obs.team in answered and aid not in seen
        ]
        for aid in gone:
            del self._agents[aid]
        self._agents.update(seen)
        self._teams = None
        self._renamed.clear()
        # the next cycle may skip unchanged rows unless an agent was listed twice (which row
        # wins depends on the other groups) or a row carries a duration (since moves with it)
        quiet = not duplicates and all(
            r.status_duration_seconds is None for p in polls for r in p.rows
        )
        self._last = {p.team: tuple(p.rows) for p in polls} if quiet else None
        return changed, appeared, gone

    def _changed_rows(self, polls: list[GroupPoll]) -> list[list[int]] | None:
        """Per poll, the positions of the rows to fold: those that are not the very object of
        the previous cycle's row there, and renamed agents'. None when every row must be
        folded: other teams, or a team's rows of another length or other agents."""
        last = self._last
        if last is None or len(last) != len(polls):
            return None
        todo = []
        for poll in polls:
            rows, before = poll.rows, last.get(poll.team)
            if before is None or len(rows) != len(before):
                return None
            where = list(compress(count(), map(is_not, rows, before)))  # no Python per row
            for i in where:
                if rows[i].agent_id != before[i].agent_id:
                    return None
            todo.append(where)
        if self._renamed and not self._add_renamed(polls, todo):
            return None
        return todo

    def _add_renamed(self, polls: list[GroupPoll], todo: list[list[int]]) -> bool:
        """Fold the rows of agents whose pause name_pause changed, in poll order. False when
        one is not in its team's poll (not polled, or in another poll): fold every row."""
        by_team = {p.team: i for i, p in enumerate(polls)}
        for aid in self._renamed:
            obs = self._agents.get(aid)
            k = None if obs is None else by_team.get(obs.team)
            if k is None:
                return False
            where = [i for i, row in enumerate(polls[k].rows) if row.agent_id == aid]
            if not where:
                return False
            todo[k] = sorted({*todo[k], *where})
        self._renamed.clear()
        return True

    def _fold_changed(self, polls: list[GroupPoll], todo: list[list[int]]) -> list[str]:
        """The rows at `todo` only (same teams, same agents): the agents in a new state."""
        changed: list[str] = []
        seen: dict[str, AgentObservation] = {}
        agents = self._agents
        for poll, where in zip(polls, todo, strict=True):
            rows = poll.rows
            for i in where:
                row = rows[i]
                previous = agents[row.agent_id]
                obs = self._next(previous, row, poll.taken_at)
                if previous.state != row.state:
                    changed.append(row.agent_id)
                if obs is not previous:
                    seen[row.agent_id] = obs
                    self._stale.add(obs.team)
                    if obs.team != previous.team:  # (a row of another team than its poll's)
                        self._teams = None
                if row.status_duration_seconds is not None:
                    self._last = None  # its since moves with every cycle: fold every row
            self._snap_time[poll.team] = poll.taken_at
        agents.update(seen)  # known agents: the order, and so the team index, stays
        if self._last is not None:
            self._last = {p.team: tuple(p.rows) for p in polls}
        return changed

    @staticmethod
    def _next(previous: AgentObservation | None, row: AgentRow, at: datetime) -> AgentObservation:
        first_seen = False
        if row.status_duration_seconds is not None and row.status_duration_seconds >= 0:
            since, exact = at - timedelta(seconds=row.status_duration_seconds), True
        elif previous is not None and previous.state == row.state:
            if (
                previous.name == row.name
                and previous.team == row.team
                and previous.calls_offered == row.calls_offered
                and previous.calls_answered == row.calls_answered
            ):
                return previous  # the same observation: most agents in most cycles
            since, exact = previous.since, previous.since_exact
            first_seen = previous.first_seen
        else:
            since, exact = at, False
            first_seen = previous is None
        return AgentObservation(
            agent_id=row.agent_id,
            name=row.name,
            team=row.team,
            state=row.state,
            since=since,
            since_exact=exact,
            calls_offered=row.calls_offered,
            calls_answered=row.calls_answered,
            first_seen=first_seen,
        )

    def correct(
        self,
        agent_id: str,
        state: AgentState,
        status_duration_seconds: float,
        fetched_at: datetime,
    ) -> bool:
        """Apply a per-user status duration. Ignored (False) when the agent is unknown or the
        per-user answer shows another state than the tracked one (it changed in between; the next
        group poll will see that)."""
        obs = self._agents.get(agent_id)
        if obs is None or status_duration_seconds < 0 or not _same_state(obs.state, state):
            return False
        since = fetched_at - timedelta(seconds=status_duration_seconds)
        # the state stays: the observation still says what its row says
        self._agents[agent_id] = replace(obs, since=since, since_exact=True, first_seen=False)
        self._stale.add(obs.team)
        return True

    def name_pause(self, agent_id: str, pause_type: str, at: datetime) -> bool:
        """Apply a pause type learned from a per-user call. An untyped pause gets the type and
        keeps its entry time; a pause of another type became this one, no later than `at`.
        False when the agent is not paused (any more) or the type is unchanged."""
        obs = self._agents.get(agent_id)
        if obs is None or obs.state.kind is not StateKind.PAUSE:
            return False
        if obs.state.pause_type == pause_type:
            return False
        state = AgentState(StateKind.PAUSE, pause_type)
        self._stale.add(obs.team)
        self._renamed.add(agent_id)  # its row says another state now: fold it next cycle
        if obs.state.pause_type is None:
            self._agents[agent_id] = replace(obs, state=state)
        else:
            self._agents[agent_id] = replace(
                obs, state=state, since=at, since_exact=False, first_seen=False
            )
        return True

    def snapshot(self, team: str, taken_at: datetime | None = None) -> AgentSnapshot:
        """The current view of one team, as an AgentSnapshot."""
        at = taken_at or self._snap_time.get(team)
        if at is None:
            raise KeyError(f"team {team!r} has not been polled")
        if self._teams is None:
            teams: dict[str, list[str]] = {}
            for aid, obs in self._agents.items():
                teams.setdefault(obs.team, []).append(aid)
            self._teams = teams
            self._tuples.clear()
        agents = self._tuples.get(team)
        if agents is None or team in self._stale:
            agents = tuple(map(self._agents.__getitem__, self._teams.get(team, ())))
            self._tuples[team] = agents
            self._stale.discard(team)
        snap = self._snaps.get(team)  # asked for again after the cycle's per-user calls
        if snap is None or snap.agents is not agents or snap.taken_at != at:
            snap = self._snaps[team] = AgentSnapshot(self.tenant, team, at, agents)
        return snap

    def teams(self) -> set[str]:
        """The teams of the tracked agents."""
        if self._teams is None:
            return {obs.team for obs in self._agents.values()}
        return {team for team, ids in self._teams.items() if ids}

    def forget_team(self, team: str) -> None:
        """Drop a team no longer watched."""
        self._agents = {k: v for k, v in self._agents.items() if v.team != team}
        self._teams = None
        self._last = None
        self._snap_time.pop(team, None)

    # --- persistence ------------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "tenant": self.tenant,
            "agents": {
                aid: {
                    "name": a.name,
                    "team": a.team,
                    "kind": a.state.kind.value,
                    "pause_type": a.state.pause_type,
                    "raw": a.state.raw,
                    "since": a.since.isoformat(),
                    "since_exact": a.since_exact,
                    "first_seen": a.first_seen,
                }
                for aid, a in self._agents.items()
            },
            "teams": {team: at.isoformat() for team, at in self._snap_time.items()},
        }

    def import_state(self, state: Mapping[str, Any]) -> None:
        """Restore from `export_state()` output. Raises ValueError on a foreign or bad dict."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"tracker state version {state.get('version')!r} is not supported")
        if state.get("tenant") != self.tenant:
            raise ValueError(f"tracker state is for tenant {state.get('tenant')!r}")
        agents: dict[str, AgentObservation] = {}
        try:
            for aid, a in dict(state.get("agents", {})).items():
                agents[str(aid)] = AgentObservation(
                    agent_id=str(aid),
                    name=str(a["name"]),
                    team=str(a["team"]),
                    state=AgentState(StateKind(a["kind"]), a.get("pause_type"), a.get("raw")),
                    since=_aware(datetime.fromisoformat(a["since"])),
                    since_exact=bool(a["since_exact"]),
                    first_seen=bool(a.get("first_seen", False)),
                )
            teams = {
                str(t): _aware(datetime.fromisoformat(v))
                for t, v in dict(state.get("teams", {})).items()
            }
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"tracker state is malformed: {e}") from None
        self._agents = agents
        self._teams = None
        self._last = None
        self._renamed.clear()
        self._snap_time = teams


def _same_state(a: AgentState, b: AgentState) -> bool:
    if a.kind != b.kind:
        return False
    # a per-user answer without a pause type name still confirms a pause
    return a.kind is not StateKind.PAUSE or b.pause_type is None or a.pause_type == b.pause_type


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"time {when.isoformat()} has no time zone")
    return when
