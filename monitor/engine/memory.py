"""What the engine remembers between evaluations (`EngineState`: per agent, team and queue,
with the open conditions) and its JSON form."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from monitor.core.states import AgentState, StateKind
from monitor.engine.conditions import (
    OpenCondition,
)
from monitor.engine.conditions import iso as _iso
from monitor.engine.conditions import iso_opt as _iso_opt
from monitor.engine.conditions import parse_dt as _dt
from monitor.engine.conditions import parse_dt_opt as _dt_opt
from monitor.engine.conditions import transition_order as _transition_order
from monitor.engine.model import (
    Accrual,
    AgentEvaluation,
    AlertTransition,
    RuleName,
    Segment,
    Subject,
)

STATE_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# --- memory ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietPath:
    """What a quiet agent's evaluations repeat until `horizon` (the next segment boundary,
    break overrun or pending condition's deadline), worked out once: valid for the schedule
    index `sched` and the ruleset key `rkey` it was made with. Never persisted: a memory
    loaded from Redis works it out again."""

    sched: object
    rkey: str
    horizon: datetime | None  # None: nothing pending, ever
    evaluation: AgentEvaluation
    scheduled: bool
    adherent: bool
    productive: bool
    productive_scheduled: bool
    anchor: datetime | None  # the piece's shift start, when it cannot vary (`anchored`)
    anchored: bool


@dataclass(slots=True)
class AgentMemory:
    """Everything the engine remembers about one agent between evaluations."""

    name: str
    team: str
    state: AgentState
    since: datetime  # when `state` was entered
    accounted_until: datetime  # accruals and conditions are settled up to here
    # when the agent last went from logged on to logged_off (early_logoff vs late_login)
    logged_on_until: datetime | None = None
    pause_start: datetime | None = None  # start of the continuous pause (any type)
    pause_type_start: datetime | None = None  # start of the current pause type
    segment: Segment | None = None  # the segment in force at accounted_until
    adherent: bool | None = None
    adherent_since: datetime | None = None
    open: dict[RuleName, OpenCondition] = field(default_factory=dict)
    last_closed: dict[RuleName, datetime] = field(default_factory=dict)
    scheduled_seconds: float = 0.0
    adherent_seconds: float = 0.0
    productive_seconds: float = 0.0
    productive_scheduled_seconds: float = 0.0
    # not part of what is remembered (not compared, not copied, not serialised): a cache
    quiet: QuietPath | None = field(default=None, compare=False, repr=False)

    def copy(self) -> AgentMemory:
        return AgentMemory(
            self.name,
            self.team,
            self.state,
            self.since,
            self.accounted_until,
            self.logged_on_until,
            self.pause_start,
            self.pause_type_start,
            self.segment,
            self.adherent,
            self.adherent_since,
            dict(self.open),
            dict(self.last_closed),
            self.scheduled_seconds,
            self.adherent_seconds,
            self.productive_seconds,
            self.productive_scheduled_seconds,
        )

    def advanced(self, q: QuietPath, end: datetime) -> AgentMemory:
        """This memory accounted up to `end` along its quiet path `q` (the same floats as the
        accrual of one piece from `accounted_until` to `end`: 0.0 + d is d)."""
        dur = (end - self.accounted_until).total_seconds()
        # open and last_closed are shared: a memory's dicts are only written after `copy()`
        return AgentMemory(self.name, self.team, self.state, self.since, end,
                           self.logged_on_until, self.pause_start, self.pause_type_start,
                           self.segment, self.adherent, self.adherent_since, self.open,
                           self.last_closed,
                           self.scheduled_seconds + (dur if q.scheduled else 0.0),
                           self.adherent_seconds + (dur if q.adherent else 0.0),
                           self.productive_seconds + (dur if q.productive else 0.0),
                           self.productive_scheduled_seconds
                           + (dur if q.productive_scheduled else 0.0), q)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return self.body_to_dict() | {
            "accounted_until": _iso(self.accounted_until),
            "totals": self.totals(),
        }

    def totals(self) -> list[float]:
        return [
            self.scheduled_seconds,
            self.adherent_seconds,
            self.productive_seconds,
            self.productive_scheduled_seconds,
        ]

    # An agent whose state and segment did not change still advances `accounted_until` and its
    # totals every cycle; everything else (the body) changes only with the agent's state. The
    # state store writes the body of the agents that changed and the progress of all of them.

    def body_to_dict(self) -> dict[str, Any]:
        """`to_dict` without `accounted_until` and the totals (see `progress`)."""
        return {
            "name": self.name,
            "team": self.team,
            "state": _state_to_dict(self.state),
            "since": _iso(self.since),
            "logged_on_until": _iso_opt(self.logged_on_until),
            "pause_start": _iso_opt(self.pause_start),
            "pause_type_start": _iso_opt(self.pause_type_start),
            "segment": _segment_to_dict(self.segment),
            "adherent": self.adherent,
            "adherent_since": _iso_opt(self.adherent_since),
            "open": {r.value: c.to_dict() for r, c in self.open.items()},
            "last_closed": {r.value: _iso(t) for r, t in self.last_closed.items()},
        }

    def progress(self) -> list[float | int]:
        """`accounted_until` (integer microseconds since the epoch: exact, and cheaper than
        isoformat for every agent every save) followed by the four totals."""
        return [(self.accounted_until - _EPOCH) // _MICROSECOND, *self.totals()]

    def same_body(self, other: AgentMemory) -> bool:
        """Whether `body_to_dict` of both would be equal (cheaply: no serialisation)."""
        return (
            self.state == other.state
            and self.since == other.since
            and self.adherent == other.adherent
            and self.segment == other.segment
            and self.open == other.open
            and self.last_closed == other.last_closed
            and self.adherent_since == other.adherent_since
            and self.pause_start == other.pause_start
            and self.pause_type_start == other.pause_type_start
            and self.logged_on_until == other.logged_on_until
            and self.name == other.name
            and self.team == other.team
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AgentMemory:
        totals = d.get("totals", [0.0, 0.0, 0.0, 0.0])
        return cls._from_body(d, _dt(d["accounted_until"]), totals)

    @classmethod
    def from_parts(cls, body: Mapping[str, Any], progress: Sequence[Any]) -> AgentMemory:
        """The inverse of `body_to_dict` and `progress`."""
        if len(progress) != 5:
            raise ValueError(f"agent progress: expected 5 numbers, got {list(progress)!r}")
        until = _EPOCH + timedelta(microseconds=int(progress[0]))
        return cls._from_body(body, until, progress[1:])

    @classmethod
    def _from_body(
        cls, d: Mapping[str, Any], accounted_until: datetime, totals: Sequence[Any]
    ) -> AgentMemory:
        t = [float(x) for x in totals]
        adherent = d.get("adherent")
        return cls(
            name=str(d.get("name", "")),
            team=str(d.get("team", "")),
            state=_state_from_dict(d["state"]),
            since=_dt(d["since"]),
            accounted_until=accounted_until,
            logged_on_until=_dt_opt(d.get("logged_on_until")),
            pause_start=_dt_opt(d.get("pause_start")),
            pause_type_start=_dt_opt(d.get("pause_type_start")),
            segment=_segment_from_dict(d.get("segment")),
            adherent=None if adherent is None else bool(adherent),
            adherent_since=_dt_opt(d.get("adherent_since")),
            open={RuleName(k): OpenCondition.from_dict(v) for k, v in d.get("open", {}).items()},
            last_closed={RuleName(k): _dt(v) for k, v in d.get("last_closed", {}).items()},
            scheduled_seconds=t[0],
            adherent_seconds=t[1],
            productive_seconds=t[2],
            productive_scheduled_seconds=t[3],
        )


class CurrentTotals(NamedTuple):
    """A lazy agent's team and totals up to `EngineState.quiet_until` (for the counters)."""

    team: str
    scheduled_seconds: float
    adherent_seconds: float
    productive_seconds: float
    productive_scheduled_seconds: float


@dataclass(frozen=True, slots=True)
class LazyAgent:
    """An agent on its quiet path that the engine does not re-make every cycle (`lazy`
    evaluation): its memory in `EngineState.agents` is settled up to its own
    `accounted_until`; from there up to the state's `quiet_until` it accrues at the flags of
    `quiet`, and everything that needs "up to now" derives it (`EngineState.current`)."""

    quiet: QuietPath
    obs: object  # the observation last evaluated: the very same object means nothing new
    slot_end: datetime  # the history slot bound after `accounted_until`: materialise there
    until: datetime  # the first of `slot_end` and the quiet path's horizon


@dataclass(slots=True)
class QueueMemory:
    name: str = ""
    open: dict[RuleName, OpenCondition] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "open": {r.value: c.to_dict() for r, c in self.open.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QueueMemory:
        return cls(
            name=str(d.get("name", "")),
            open={RuleName(k): OpenCondition.from_dict(v) for k, v in d.get("open", {}).items()},
        )


@dataclass(slots=True)
class TeamMemory:
    """Per-minute (scheduled, adherent) seconds for the trailing team-adherence window."""

    buckets: dict[int, tuple[float, float]] = field(default_factory=dict)
    open: dict[RuleName, OpenCondition] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": [[k, s, a] for k, (s, a) in sorted(self.buckets.items())],
            "open": {r.value: c.to_dict() for r, c in self.open.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TeamMemory:
        return cls(
            buckets={int(k): (float(s), float(a)) for k, s, a in d.get("buckets", [])},
            open={RuleName(k): OpenCondition.from_dict(v) for k, v in d.get("open", {}).items()},
        )


@dataclass(slots=True)
class EngineState:
    """What the engine remembers between evaluations, for one tenant. JSON-serialisable."""

    tenant: str = ""
    agents: dict[str, AgentMemory] = field(default_factory=dict)
    queues: dict[str, QueueMemory] = field(default_factory=dict)
    teams: dict[str, TeamMemory] = field(default_factory=dict)
    stale: dict[str, OpenCondition] = field(default_factory=dict)  # endpoint -> staleness
    ruleset_key: str = ""
    # Lazy evaluation (`evaluate_agents(lazy=True)`): the agents in `lazy` are accounted up to
    # `quiet_until` (the latest evaluation) although their memory says less; `rates` counts
    # them per team as (scheduled, adherent) for the team windows. `restored`: agents that were
    # lazy when the state was saved (their saved memory is settled less far than
    # `quiet_until`): the next evaluation brings them up to `quiet_until` first.
    quiet_until: datetime | None = field(default=None, compare=False)
    lazy: dict[str, LazyAgent] = field(default_factory=dict, compare=False, repr=False)
    rates: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)
    restored: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    # the last evaluations, sorted by agent, and each agent's index (a cache: not persisted)
    listing: tuple[list[AgentEvaluation], dict[str, int]] | None = field(
        default=None, compare=False, repr=False
    )

    def shallow_copy(self) -> EngineState:
        """A copy whose containers are new; members are replaced (never mutated) on write."""
        return EngineState(
            tenant=self.tenant,
            agents=dict(self.agents),
            queues=dict(self.queues),
            teams=dict(self.teams),
            stale=dict(self.stale),
            ruleset_key=self.ruleset_key,
            quiet_until=self.quiet_until,
            lazy=dict(self.lazy),
            rates=dict(self.rates),
            restored=self.restored,
            listing=self.listing,
        )

    def current(self, agent_id: str) -> AgentMemory:
        """The agent's memory as the eager engine holds it: a lazy agent's accounted up to
        `quiet_until` (a new object; otherwise the memory itself)."""
        m = self.agents[agent_id]
        lz = self.lazy.get(agent_id)
        if lz is None or self.quiet_until is None or self.quiet_until <= m.accounted_until:
            return m
        return m.advanced(lz.quiet, self.quiet_until)

    def current_agents(self) -> dict[str, AgentMemory]:
        """`current` of every agent."""
        if not self.lazy:
            return self.agents
        return {aid: self.current(aid) for aid in self.agents}

    def lazy_stretches(self) -> Iterator[tuple[str, AgentMemory, QuietPath, float]]:
        """Each lazy agent whose books lag `quiet_until`: its id, settled memory, quiet path
        and the seconds from its `accounted_until` to `quiet_until` (what it accrued at the
        quiet path's flags since)."""
        until = self.quiet_until
        if until is None:
            return
        agents = self.agents
        # lazy agents share few bases (the evaluation each joined or was last settled at), as
        # the same datetime object: one duration per run of them, found by identity (hashing
        # an aware datetime would cost more than the rest)
        last: datetime | None = None
        dur = 0.0
        for aid, lz in self.lazy.items():
            m = agents[aid]
            base = m.accounted_until
            if base is not last:
                last, dur = base, (until - base).total_seconds() if until > base else 0.0
            if dur:
                yield aid, m, lz.quiet, dur

    def current_totals(self) -> dict[str, AgentMemory | CurrentTotals]:
        """Every agent's team and totals as `current` has them, cheaply: a lazy agent's as a
        `CurrentTotals` (the same sums as `AgentMemory.advanced`), the others' memory itself."""
        out: dict[str, AgentMemory | CurrentTotals] = dict(self.agents)
        make = CurrentTotals._make
        for aid, m, q, dur in self.lazy_stretches():
            out[aid] = make((
                m.team,
                m.scheduled_seconds + dur if q.scheduled else m.scheduled_seconds,
                m.adherent_seconds + dur if q.adherent else m.adherent_seconds,
                m.productive_seconds + dur if q.productive else m.productive_seconds,
                m.productive_scheduled_seconds + dur
                if q.productive_scheduled
                else m.productive_scheduled_seconds,
            ))  # fmt: skip
        return out

    def last_accounted(self) -> datetime | None:
        """Up to when the books are settled: the latest of every agent's `accounted_until` and
        `quiet_until` (None before the first evaluation)."""
        times = [m.accounted_until for m in self.agents.values()]
        if self.quiet_until is not None and (self.lazy or self.restored):
            times.append(self.quiet_until)
        return max(times) if times else None

    def to_dict(self) -> dict[str, Any]:
        return self.header_to_dict() | {
            "agents": {k: v.to_dict() for k, v in self.agents.items()},
            "queues": {k: v.to_dict() for k, v in self.queues.items()},
            "teams": {k: v.to_dict() for k, v in self.teams.items()},
        }

    def header_to_dict(self) -> dict[str, Any]:
        """Everything but the agents, queues and teams (small: written whole when it changes).
        With lazy agents, also which ones and up to when they are accounted: their saved memory
        is settled only up to their own `accounted_until` (the adherence history has their time
        up to there), and the team windows already hold their time up to `quiet_until`."""
        d = {
            "version": STATE_VERSION,
            "tenant": self.tenant,
            "ruleset_key": self.ruleset_key,
            "stale": {k: v.to_dict() for k, v in self.stale.items()},
        }
        lazy = self.lazy.keys() | self.restored
        if lazy and self.quiet_until is not None:
            d["lazy"] = {"until": _iso(self.quiet_until), "agents": sorted(lazy)}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EngineState:
        state = cls.from_header(d)
        state.agents = {k: AgentMemory.from_dict(v) for k, v in d.get("agents", {}).items()}
        state.queues = {k: QueueMemory.from_dict(v) for k, v in d.get("queues", {}).items()}
        state.teams = {k: TeamMemory.from_dict(v) for k, v in d.get("teams", {}).items()}
        return state

    @classmethod
    def from_header(cls, d: Mapping[str, Any]) -> EngineState:
        """A state with what `header_to_dict` holds and no agents, queues or teams."""
        version = d.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise ValueError(f"engine state version {version!r}; expected {STATE_VERSION}")
        lazy = d.get("lazy") or {}
        return cls(
            tenant=str(d.get("tenant", "")),
            ruleset_key=str(d.get("ruleset_key", "")),
            stale={k: OpenCondition.from_dict(v) for k, v in d.get("stale", {}).items()},
            quiet_until=_dt(lazy["until"]) if lazy else None,
            restored=frozenset(str(a) for a in lazy.get("agents", ())),
        )

    def totals(self) -> list[Accrual]:
        """Cumulative seconds per agent since the engine first saw it (for counters, replay)."""
        return [
            Accrual(
                agent_id=agent_id,
                team=m.team,
                scheduled_seconds=m.scheduled_seconds,
                adherent_seconds=m.adherent_seconds,
                productive_seconds=m.productive_seconds,
                productive_scheduled_seconds=m.productive_scheduled_seconds,
            )
            for agent_id, m in sorted(self.current_totals().items())
        ]

    def firing_alerts(self) -> list[AlertTransition]:
        """The firing transition of every alert still open (e.g. to rebuild views on restart)."""
        out: list[AlertTransition] = []

        def add(
            rule: RuleName, c: OpenCondition, subject: Subject, sid: str, team: str | None
        ) -> None:
            if c.firing:
                out.append(
                    AlertTransition(
                        rule=rule,
                        status="firing",
                        tenant=self.tenant,
                        subject=subject,
                        subject_id=sid,
                        team=team,
                        severity=c.severity,
                        at=c.fired_at or c.since,
                        ideal_at=c.fired_ideal_at or c.since,
                        condition_since=c.since,
                        details=dict(c.details),
                        labels=dict(c.labels),
                    )
                )

        for aid, m in self.agents.items():
            for rule, c in m.open.items():
                add(rule, c, "agent", aid, m.team or None)
        for qid, q in self.queues.items():
            for rule, c in q.open.items():
                add(rule, c, "queue", qid, None)
        for team, tm in self.teams.items():
            for rule, c in tm.open.items():
                add(rule, c, "team", team, team)
        for endpoint, c in self.stale.items():
            add(RuleName.STALE_DATA, c, "tenant", endpoint, None)
        out.sort(key=_transition_order)
        return out


# --- conversions -----------------------------------------------------------------------------


def _state_to_dict(s: AgentState) -> dict[str, str | None]:
    return {"kind": s.kind.value, "pause_type": s.pause_type, "raw": s.raw}


def _state_from_dict(d: Mapping[str, Any]) -> AgentState:
    return AgentState(StateKind(d["kind"]), d.get("pause_type"), d.get("raw"))


def _segment_to_dict(s: Segment | None) -> dict[str, str] | None:
    if s is None:
        return None
    return {
        "start": _iso(s.start),
        "end": _iso(s.end),
        "agent_id": s.agent_id,
        "activity": s.activity,
    }


def _segment_from_dict(d: Mapping[str, Any] | None) -> Segment | None:
    if d is None:
        return None
    return Segment(_dt(d["start"]), _dt(d["end"]), str(d["agent_id"]), str(d["activity"]))
