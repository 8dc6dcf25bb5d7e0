"""The adherence rules engine: pure and deterministic.

Given what the engine remembers (`EngineState`), the latest observations, the schedules and the
rules, it returns a new state, where every agent stands, the alert transitions and the seconds
accrued for the adherence/conformance counters. It imports nothing that does I/O and never reads
a clock: `now` is an argument.

Timeline model. Between two evaluations the engine knows one thing about an agent's state: the
state now and when it was entered (`AgentObservation.since`). It assumes at most one change in
between, at `since`. The interval from the last evaluation to `now` is cut at that change, at
every schedule-segment boundary and at every break-overrun threshold; each piece has one state
and one scheduled segment, so conditions and accruals are exact on pieces. A condition starts at
the exact moment it began to hold (state entry, segment boundary, pause length exceeding the
break), fires at the first evaluation where it has held for `after`, and resolves at the first
evaluation where it no longer holds, with `ideal_at` the moment it stopped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from monitor.core.snapshots import AgentObservation, QueueObservation
from monitor.core.states import AgentState, StateKind
from monitor.engine.conditions import (
    Emitter,
    OpenCondition,
    Target,
    close,
    fire_if_due,
    no_details,
    step,
)
from monitor.engine.conditions import fmt as _fmt
from monitor.engine.conditions import iso as _iso
from monitor.engine.conditions import iso_opt as _iso_opt
from monitor.engine.conditions import parse_dt as _dt
from monitor.engine.conditions import parse_dt_opt as _dt_opt
from monitor.engine.conditions import utc as _utc
from monitor.engine.model import (
    Accrual,
    AccruedPiece,
    Activity,
    AgentEvaluation,
    AlertTransition,
    RuleConfig,
    RuleName,
    RuleSet,
    Segment,
    Subject,
)

__all__ = [
    "AGENT_RULES",
    "QUEUE_RULES",
    "AgentMemory",
    "AgentResult",
    "EngineState",
    "OpenCondition",
    "QueueMemory",
    "QueueResult",
    "ScheduleIndex",
    "StalenessResult",
    "TeamMemory",
    "account_until",
    "evaluate_agents",
    "evaluate_queues",
    "evaluate_staleness",
    "index_schedules",
    "next_due",
]

OFF_ACTIVITY = "off"  # never part of a shift (scenario-format.md)
# Unscheduled time this close to a shift belongs to that shift's day in the history (an early
# login before a midnight shift is that night's, not the previous day's).
SHIFT_HALO = timedelta(hours=6)
DEFAULT_TEAM_WINDOW = timedelta(minutes=30)
# team_adherence_below needs this much scheduled time in the window before it judges a team, so
# the first minutes of a shift (or a single agent's short segment) cannot trip it
TEAM_MIN_SCHEDULED_SECONDS = 300.0
_BUCKET_SECONDS = 60
_EPSILON = timedelta(microseconds=1)
STATE_VERSION = 1

AGENT_RULES: tuple[RuleName, ...] = (
    RuleName.OUT_OF_ADHERENCE,
    RuleName.LATE_LOGIN,
    RuleName.EARLY_LOGOFF,
    RuleName.BREAK_OVERRUN,
    RuleName.LONG_WRAP_UP,
    RuleName.LONG_PAUSE,
    RuleName.UNSCHEDULED_LOGIN,
    RuleName.UNMAPPED_STATE,
    RuleName.UNKNOWN_AGENT,
)
QUEUE_RULES: tuple[RuleName, ...] = (
    RuleName.QUEUE_SLA_BELOW,
    RuleName.QUEUE_WAIT_ABOVE,
    RuleName.QUEUE_NO_AGENTS_READY,
)


# --- memory ----------------------------------------------------------------------------------


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "team": self.team,
            "state": _state_to_dict(self.state),
            "since": _iso(self.since),
            "accounted_until": _iso(self.accounted_until),
            "logged_on_until": _iso_opt(self.logged_on_until),
            "pause_start": _iso_opt(self.pause_start),
            "pause_type_start": _iso_opt(self.pause_type_start),
            "segment": _segment_to_dict(self.segment),
            "adherent": self.adherent,
            "adherent_since": _iso_opt(self.adherent_since),
            "open": {r.value: c.to_dict() for r, c in self.open.items()},
            "last_closed": {r.value: _iso(t) for r, t in self.last_closed.items()},
            "totals": [
                self.scheduled_seconds,
                self.adherent_seconds,
                self.productive_seconds,
                self.productive_scheduled_seconds,
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AgentMemory:
        totals = [float(x) for x in d.get("totals", [0.0, 0.0, 0.0, 0.0])]
        adherent = d.get("adherent")
        return cls(
            name=str(d.get("name", "")),
            team=str(d.get("team", "")),
            state=_state_from_dict(d["state"]),
            since=_dt(d["since"]),
            accounted_until=_dt(d["accounted_until"]),
            logged_on_until=_dt_opt(d.get("logged_on_until")),
            pause_start=_dt_opt(d.get("pause_start")),
            pause_type_start=_dt_opt(d.get("pause_type_start")),
            segment=_segment_from_dict(d.get("segment")),
            adherent=None if adherent is None else bool(adherent),
            adherent_since=_dt_opt(d.get("adherent_since")),
            open={RuleName(k): OpenCondition.from_dict(v) for k, v in d.get("open", {}).items()},
            last_closed={RuleName(k): _dt(v) for k, v in d.get("last_closed", {}).items()},
            scheduled_seconds=totals[0],
            adherent_seconds=totals[1],
            productive_seconds=totals[2],
            productive_scheduled_seconds=totals[3],
        )


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

    def shallow_copy(self) -> EngineState:
        """A copy whose containers are new; members are replaced (never mutated) on write."""
        return EngineState(
            tenant=self.tenant,
            agents=dict(self.agents),
            queues=dict(self.queues),
            teams=dict(self.teams),
            stale=dict(self.stale),
            ruleset_key=self.ruleset_key,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "tenant": self.tenant,
            "ruleset_key": self.ruleset_key,
            "agents": {k: v.to_dict() for k, v in self.agents.items()},
            "queues": {k: v.to_dict() for k, v in self.queues.items()},
            "teams": {k: v.to_dict() for k, v in self.teams.items()},
            "stale": {k: v.to_dict() for k, v in self.stale.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EngineState:
        version = d.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise ValueError(f"engine state version {version!r}; expected {STATE_VERSION}")
        return cls(
            tenant=str(d.get("tenant", "")),
            ruleset_key=str(d.get("ruleset_key", "")),
            agents={k: AgentMemory.from_dict(v) for k, v in d.get("agents", {}).items()},
            queues={k: QueueMemory.from_dict(v) for k, v in d.get("queues", {}).items()},
            teams={k: TeamMemory.from_dict(v) for k, v in d.get("teams", {}).items()},
            stale={k: OpenCondition.from_dict(v) for k, v in d.get("stale", {}).items()},
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
            for agent_id, m in sorted(self.agents.items())
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


@dataclass(frozen=True, slots=True)
class AgentResult:
    state: EngineState
    evaluations: list[AgentEvaluation]
    transitions: list[AlertTransition]
    accruals: list[Accrual]


@dataclass(frozen=True, slots=True)
class QueueResult:
    state: EngineState
    transitions: list[AlertTransition]


@dataclass(frozen=True, slots=True)
class StalenessResult:
    state: EngineState
    transitions: list[AlertTransition]


# --- schedules -------------------------------------------------------------------------------


class ScheduleIndex:
    """One agent's segments, indexed for lookups by time."""

    __slots__ = ("_blocks", "_bounds", "_ends", "_max_end", "_shifts", "_starts", "segments")

    def __init__(self, segments: Iterable[Segment]) -> None:
        # all times in UTC with the one `UTC` tzinfo: comparisons then skip utcoffset() calls
        segs = sorted(
            (
                s
                if s.start.tzinfo is UTC and s.end.tzinfo is UTC
                else Segment(_utc(s.start), _utc(s.end), s.agent_id, s.activity)
                for s in segments
            ),
            key=lambda s: (s.start, s.end),
        )
        self.segments = segs
        self._starts = [s.start for s in segs]
        self._ends = sorted(s.end for s in segs)
        self._max_end: list[datetime] = []
        for s in segs:
            prev = self._max_end[-1] if self._max_end else s.end
            self._max_end.append(max(prev, s.end))
        self._bounds = sorted({s.start for s in segs} | {s.end for s in segs})
        self._shifts: list[tuple[datetime, datetime]] | None = None
        self._blocks: dict[frozenset[str], list[tuple[datetime, datetime]]] = {}

    def at(self, t: datetime) -> Segment | None:
        """The segment in force at `t` (the latest-starting one if segments overlap)."""
        i = bisect.bisect_right(self._starts, t) - 1
        while i >= 0:
            if self._max_end[i] <= t:
                return None
            s = self.segments[i]
            if s.end > t:
                return s
            i -= 1
        return None

    def bounds_in(self, a: datetime, b: datetime) -> list[datetime]:
        """Segment boundaries in (a, b]."""
        lo = bisect.bisect_right(self._bounds, a)
        hi = bisect.bisect_right(self._bounds, b)
        return self._bounds[lo:hi]

    def run_start(self, t: datetime, pred: Callable[[Segment], bool]) -> datetime:
        """Start of the run of contiguous segments satisfying `pred` that contains `t`."""
        seg = self.at(t)
        if seg is None:
            return t
        start = seg.start
        for _ in range(len(self.segments)):
            prev = self.at(start - _EPSILON)
            if prev is None or not pred(prev):
                break
            start = prev.start
        return start

    def gap_start(self, t: datetime) -> datetime | None:
        """When the unscheduled gap containing `t` began (the latest segment end <= t)."""
        i = bisect.bisect_right(self._ends, t)
        return self._ends[i - 1] if i else None

    def shift_at(self, t: datetime) -> tuple[datetime, datetime] | None:
        """The shift (run of contiguous non-`off` segments) containing `t`."""
        if self._shifts is None:
            self._shifts = _merge(s for s in self.segments if s.activity != OFF_ACTIVITY)
        for start, end in self._shifts:
            if start <= t < end:
                return start, end
            if start > t:
                break
        return None

    def shift_anchor(self, a: datetime, b: datetime) -> datetime | None:
        """The start of the shift that time from `a` to `b` belongs to: the one in force, else
        the nearest within `SHIFT_HALO` (logged on early or late is part of that shift's day);
        None when none is that near."""
        shift = self.shift_at(a)
        if shift is not None:
            return shift[0]
        best: tuple[timedelta, datetime] | None = None
        for start, end in self._shifts or ():
            gap = start - b if start >= b else a - end if end <= a else timedelta(0)
            if gap <= SHIFT_HALO and (best is None or gap < best[0]):
                best = (gap, start)
        return best[1] if best is not None else None

    def overrun_at(
        self, pause_start: datetime, break_activities: frozenset[str]
    ) -> datetime | None:
        """When a continuous pause from `pause_start` outlasts the break block it overlaps.

        Contiguous break-like segments (a break followed by lunch) form one block; the pause is
        measured against the first block that ends after the pause began.
        """
        blocks = self._blocks.get(break_activities)
        if blocks is None:
            blocks = _merge(s for s in self.segments if s.activity in break_activities)
            self._blocks[break_activities] = blocks
        for start, end in blocks:
            if end > pause_start:
                return max(pause_start + (end - start), start)
        return None


def _merge(segments: Iterable[Segment]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s in segments:  # already sorted by start
        if out and s.start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], s.end))
        else:
            out.append((s.start, s.end))
    return out


# agent id -> segments, or the same indexed once (`index_schedules`) by a caller that repeats them
Schedules = Mapping[str, Sequence[Segment] | ScheduleIndex]


def _schedule_for(segments: Sequence[Segment] | ScheduleIndex | None) -> ScheduleIndex:
    # The engine keeps no cache: a caller that evaluates the same schedules every cycle passes
    # them indexed once (`index_schedules`), as the pipeline does.
    if isinstance(segments, ScheduleIndex):
        return segments
    if not segments:
        return _EMPTY_SCHEDULE
    return ScheduleIndex(segments)


def index_schedules(schedules: Mapping[str, Sequence[Segment]]) -> dict[str, ScheduleIndex]:
    """Each agent's segments indexed for the engine (build once per schedule version)."""
    return {agent: ScheduleIndex(segs) for agent, segs in schedules.items() if segs}


_EMPTY_SCHEDULE = ScheduleIndex(())


# --- agent conditions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Phase:
    """An agent's state and what goes with it, constant between two change points."""

    state: AgentState
    since: datetime
    pause_start: datetime | None
    type_start: datetime | None
    logged_on_until: datetime | None


def _judged(ruleset: RuleSet, seg: Segment | None) -> Activity | None:
    """The activity of `seg` if it counts for adherence (known and not neutral)."""
    if seg is None:
        return None
    act = ruleset.activities.get(seg.activity)
    if act is None or act.neutral:
        return None
    return act


def _holding(
    t: datetime,
    ph: _Phase,
    sched: ScheduleIndex,
    ruleset: RuleSet,
    cfgs: Mapping[RuleName, RuleConfig],
) -> dict[RuleName, datetime]:
    """The agent rules whose condition holds at `t`, each with when it began to hold."""
    out: dict[RuleName, datetime] = {}
    _schedule_rules(out, t=t, ph=ph, sched=sched, ruleset=ruleset, cfgs=cfgs)
    _state_rules(out, t=t, ph=ph, sched=sched, ruleset=ruleset, cfgs=cfgs)
    _presence_rules(out, t=t, ph=ph, sched=sched, cfgs=cfgs)
    return out


def _schedule_rules(
    out: dict[RuleName, datetime],
    *,
    t: datetime,
    ph: _Phase,
    sched: ScheduleIndex,
    ruleset: RuleSet,
    cfgs: Mapping[RuleName, RuleConfig],
) -> None:
    """out_of_adherence, late_login and early_logoff: the state against the activity now."""
    st = ph.state
    act = _judged(ruleset, sched.at(t))
    if act is None or act.allows(st):
        return

    def disallows(s: Segment) -> bool:
        a = _judged(ruleset, s)
        return a is not None and not a.allows(st)

    if RuleName.OUT_OF_ADHERENCE in cfgs:
        out[RuleName.OUT_OF_ADHERENCE] = max(ph.since, sched.run_start(t, disallows))
    if st.kind is not StateKind.LOGGED_OFF or not (
        RuleName.LATE_LOGIN in cfgs or RuleName.EARLY_LOGOFF in cfgs
    ):
        return
    shift = sched.shift_at(t)
    if shift is None:
        return
    lou = ph.logged_on_until
    rule = RuleName.EARLY_LOGOFF if lou is not None and lou > shift[0] else RuleName.LATE_LOGIN
    if rule in cfgs:
        out[rule] = max(sched.run_start(t, disallows), shift[0], ph.since)


def _state_rules(
    out: dict[RuleName, datetime],
    *,
    t: datetime,
    ph: _Phase,
    sched: ScheduleIndex,
    ruleset: RuleSet,
    cfgs: Mapping[RuleName, RuleConfig],
) -> None:
    """break_overrun, long_pause, long_wrap_up and unmapped_state: the state and its length."""
    st = ph.state
    kind = st.kind
    if kind is StateKind.PAUSE:
        if RuleName.BREAK_OVERRUN in cfgs and ph.pause_start is not None:
            over = sched.overrun_at(ph.pause_start, ruleset.break_activities)
            if over is not None and t >= over:
                out[RuleName.BREAK_OVERRUN] = over
        lp = cfgs.get(RuleName.LONG_PAUSE)
        if lp is not None:
            if lp.pause_type is None:
                out[RuleName.LONG_PAUSE] = ph.pause_start or ph.since
            elif (st.pause_type or "").casefold() == lp.pause_type.casefold():
                out[RuleName.LONG_PAUSE] = ph.type_start or ph.since
    elif kind is StateKind.WRAP_UP:
        if RuleName.LONG_WRAP_UP in cfgs:
            out[RuleName.LONG_WRAP_UP] = ph.since
    elif kind is StateKind.UNKNOWN and RuleName.UNMAPPED_STATE in cfgs:
        out[RuleName.UNMAPPED_STATE] = ph.since


def _presence_rules(
    out: dict[RuleName, datetime],
    *,
    t: datetime,
    ph: _Phase,
    sched: ScheduleIndex,
    cfgs: Mapping[RuleName, RuleConfig],
) -> None:
    """unknown_agent and unscheduled_login: logged on without a schedule, or outside it."""
    if ph.state.kind is StateKind.LOGGED_OFF:
        return
    if not sched.segments and RuleName.UNKNOWN_AGENT in cfgs:
        out[RuleName.UNKNOWN_AGENT] = ph.since
    elif sched.at(t) is None and RuleName.UNSCHEDULED_LOGIN in cfgs:
        gap = sched.gap_start(t)
        out[RuleName.UNSCHEDULED_LOGIN] = max(ph.since, gap) if gap else ph.since


def _first_phase(obs: AgentObservation, now: datetime) -> _Phase:
    since = min(_utc(obs.since), now)
    paused = obs.state.kind is StateKind.PAUSE
    # An exact logged_off entry time means the agent logged off then; a poll-derived one only
    # says when we first looked, so it proves nothing about earlier log-ons.
    lou = since if (obs.state.kind is StateKind.LOGGED_OFF and obs.since_exact) else None
    return _Phase(obs.state, since, since if paused else None, since if paused else None, lou)


def _next_phase(
    old: _Phase, obs: AgentObservation, accounted_until: datetime, now: datetime
) -> tuple[_Phase, datetime | None]:
    """The phase after `obs`, and when it began (None when the agent is in the same state)."""
    obs_since = _utc(obs.since)
    # The same state entered again after we last looked means it was left and re-entered
    # in between; otherwise a different `since` for the same state is tracker jitter.
    reentry = obs_since > accounted_until
    st = obs.state
    if st == old.state and not reentry:
        return old, None
    since = min(max(obs_since, old.since), now)
    ps: datetime | None = None
    ts: datetime | None = None
    if st.kind is StateKind.PAUSE:
        if old.state.kind is StateKind.PAUSE and st != old.state:
            ps, ts = old.pause_start or since, since  # only the type changed: one pause
        else:
            ps = ts = since
    lou = old.logged_on_until
    if old.state.logged_on and not st.logged_on:
        lou = since
    return _Phase(st, since, ps, ts, lou), since


# --- agents ----------------------------------------------------------------------------------


def _ruleset_key(ruleset: RuleSet) -> str:
    rules = sorted(
        (r.value, c.after.total_seconds(), c.threshold, c.pause_type, c.enabled)
        for r, c in ruleset.rules.items()
    )
    acts = sorted(
        (a.name, tuple(sorted(a.allowed)), a.neutral) for a in ruleset.activities.values()
    )
    return repr((rules, acts, ruleset.productive_activity, sorted(ruleset.break_activities)))


def _agent_details(
    mem_name: str,
    *,
    ph: _Phase,
    seg: Segment | None,
    since: datetime,
    cfg: RuleConfig,
    now: datetime,
) -> dict[str, str]:
    d = {"state": ph.state.label, "held_for": _fmt(now - since), "threshold": _fmt(cfg.after)}
    if mem_name:
        d["name"] = mem_name
    if seg is not None:
        d["activity"] = seg.activity
    if ph.state.pause_type:
        d["pause_type"] = ph.state.pause_type
    if ph.state.raw:
        d["value"] = ph.state.raw
    return d


def evaluate_agents(
    state: EngineState,
    *,
    tenant: str,
    now: datetime,
    agents: Sequence[AgentObservation],
    schedules: Schedules,
    ruleset: RuleSet,
) -> AgentResult:
    """Evaluate every agent of the tenant at `now`.

    `agents` should be every agent of the tenant seen by this cycle (all group snapshots):
    agents that appear only in `schedules` are taken to be logged_off. Pass `schedules` indexed
    (`index_schedules`) when evaluating the same ones every cycle.
    `state` is not modified; the returned state is a new object sharing unchanged members.
    """
    now = _utc(now)
    new = state.shallow_copy()
    new.tenant = tenant
    key = _ruleset_key(ruleset)
    rules_changed = key != new.ruleset_key
    new.ruleset_key = key
    cfgs = {r: c for r in AGENT_RULES if (c := ruleset.enabled(r)) is not None}
    emit = Emitter(tenant, now)
    evaluations: list[AgentEvaluation] = []
    accruals: list[Accrual] = []

    seen: set[str] = set()
    observations = list(agents)
    for obs in observations:
        seen.add(obs.agent_id)
    for agent_id in schedules:
        if agent_id in seen:
            continue
        observations.append(_absent(agent_id, new.agents.get(agent_id), schedules, now))
        seen.add(agent_id)

    for obs in observations:
        sched = _schedule_for(schedules.get(obs.agent_id))
        old_mem = new.agents.get(obs.agent_id)
        quiet = (
            None
            if old_mem is None or rules_changed
            else _evaluate_quiet_agent(
                old_mem, obs, sched=sched, now=now, ruleset=ruleset, cfgs=cfgs
            )
        )
        if quiet is not None:
            mem, ev, acc = quiet
        else:
            mem, ev, acc = _evaluate_agent(
                old_mem,
                obs,
                sched=sched,
                now=now,
                ruleset=ruleset,
                cfgs=cfgs,
                emit=emit,
                rules_changed=rules_changed,
            )
        new.agents[obs.agent_id] = mem
        evaluations.append(ev)
        if acc is not None:
            accruals.append(acc)

    _evaluate_teams(new, now, accruals, ruleset, emit)
    emit.out.sort(key=_transition_order)
    evaluations.sort(key=lambda e: e.agent_id)
    return AgentResult(new, evaluations, emit.out, accruals)


def _absent(
    agent_id: str,
    mem: AgentMemory | None,
    schedules: Schedules,
    now: datetime,
) -> AgentObservation:
    """An agent with a schedule that no snapshot listed: logged_off."""
    if mem is not None:
        since = mem.since if mem.state.kind is StateKind.LOGGED_OFF else now
        return AgentObservation(
            agent_id, mem.name, mem.team, AgentState(StateKind.LOGGED_OFF), since
        )
    shift = _schedule_for(schedules.get(agent_id)).shift_at(now)
    since = shift[0] if shift is not None else now
    return AgentObservation(agent_id, "", "", AgentState(StateKind.LOGGED_OFF), since)


def _evaluate_quiet_agent(
    mem: AgentMemory,
    obs: AgentObservation,
    *,
    sched: ScheduleIndex,
    now: datetime,
    ruleset: RuleSet,
    cfgs: Mapping[RuleName, RuleConfig],
) -> tuple[AgentMemory, AgentEvaluation, Accrual | None] | None:
    """The common case in one piece, or None when `_evaluate_agent` must look closer.

    Quiet means: the same state as before, no segment boundary or break overrun since the last
    evaluation, the same segment in force, and no condition reaching its `after`. Then nothing
    can open, close or fire, and the elapsed time accrues as one piece. Most agents are quiet
    in most cycles, so this is what keeps a cycle cheap at thousands of agents.
    """
    p0 = mem.accounted_until
    end = now
    if (
        end <= p0
        or obs.state != mem.state
        or _utc(obs.since) > p0  # left and re-entered in between
        or (obs.name and obs.name != mem.name)
        or (obs.team and obs.team != mem.team)
        or mem.adherent_since is None
        or sched.bounds_in(p0, end)
    ):
        return None
    if mem.state.kind is StateKind.PAUSE and mem.pause_start is not None:
        over = sched.overrun_at(mem.pause_start, ruleset.break_activities)
        if over is not None and p0 <= over <= end:
            return None
    seg = sched.at(end)
    if seg != mem.segment:
        return None
    for rule, cond in mem.open.items():
        cfg = cfgs.get(rule)
        if not cond.firing and cfg is not None and end >= cond.since + cfg.after:
            return None
    st = mem.state
    act = _judged(ruleset, seg)
    adherent = None if act is None else act.allows(st)
    if adherent != mem.adherent:
        return None
    accrued = _accrue([(p0, end, st, seg)], sched, ruleset)
    new = mem.copy()
    _book(new, accrued[0])
    new.accounted_until = end
    return _settled(obs.agent_id, new, seg, accrued)


Seconds = tuple[float, float, float, float]
Accrued = tuple[Seconds, tuple[AccruedPiece, ...]]


def _accrue(
    pieces: Iterable[tuple[datetime, datetime, AgentState, Segment | None]],
    sched: ScheduleIndex,
    ruleset: RuleSet,
) -> Accrued:
    """The accrual loop: (scheduled, adherent, productive, productive-scheduled) seconds of
    pieces of time, each from `a` to `b` in one state under one segment, and the pieces."""
    sched_s = adh_s = prod_s = prod_sched_s = 0.0
    productive = ruleset.activities.get(ruleset.productive_activity)
    out: list[AccruedPiece] = []
    for a, b, st, seg in pieces:
        dur = (b - a).total_seconds()
        if dur <= 0:
            continue
        act = _judged(ruleset, seg)
        scheduled = act is not None
        adherent = act is not None and act.allows(st)
        prod = productive is not None and productive.allows(st)
        prod_sched = seg is not None and seg.activity == ruleset.productive_activity
        sched_s += dur if scheduled else 0.0
        adh_s += dur if adherent else 0.0
        prod_s += dur if prod else 0.0
        prod_sched_s += dur if prod_sched else 0.0
        if scheduled or prod or prod_sched:
            anchor = sched.shift_anchor(a, b)
            out.append(AccruedPiece(a, b, anchor, scheduled, adherent, prod, prod_sched))
    return (sched_s, adh_s, prod_s, prod_sched_s), tuple(out)


def _book(mem: AgentMemory, seconds: Seconds) -> None:
    s_s, a_s, p_s, ps_s = seconds
    mem.scheduled_seconds += s_s
    mem.adherent_seconds += a_s
    mem.productive_seconds += p_s
    mem.productive_scheduled_seconds += ps_s


def _settled(
    agent_id: str,
    mem: AgentMemory,
    seg: Segment | None,
    accrued: Accrued,
) -> tuple[AgentMemory, AgentEvaluation, Accrual | None]:
    """The evaluation and the accrual (scheduled, adherent, productive, productive-scheduled
    seconds; None when all are zero) of an agent whose memory is settled up to now."""
    ev = AgentEvaluation(
        agent_id=agent_id,
        team=mem.team,
        state=mem.state,
        state_since=mem.since,
        activity=seg.activity if seg is not None else None,
        adherent=mem.adherent,
        adherent_since=mem.adherent_since,
    )
    seconds, pieces = accrued
    acc = Accrual(agent_id, mem.team, *seconds, pieces=pieces) if any(seconds) else None
    return mem, ev, acc


@dataclass(frozen=True, slots=True)
class _Span:
    """The time being settled, `p0` to `end`: the old phase, then the new one from `change_at`."""

    old: _Phase
    new: _Phase
    change_at: datetime | None
    p0: datetime
    end: datetime

    def at(self, t: datetime) -> _Phase:
        return self.new if self.change_at is not None and t >= self.change_at else self.old


def _evaluate_agent(
    old_mem: AgentMemory | None,
    obs: AgentObservation,
    *,
    sched: ScheduleIndex,
    now: datetime,
    ruleset: RuleSet,
    cfgs: Mapping[RuleName, RuleConfig],
    emit: Emitter,
    rules_changed: bool,
) -> tuple[AgentMemory, AgentEvaluation, Accrual | None]:
    mem, span = _begin(old_mem, obs, now)
    first = old_mem is None
    events = _events(span, sched, ruleset)
    ordered = sorted(events | {span.p0, span.end})
    seg_now = sched.at(span.end)
    # p0 was evaluated by the previous call; look again only if what held there may differ
    skip_p0 = not first and not rules_changed and span.change_at != span.p0 and len(ordered) > 1
    # Nothing happened since p0 (same state, no boundary, same segment in force): what held
    # at p0 still holds, so only the firing deadlines below need checking.
    quiet = skip_p0 and not events and seg_now == mem.segment
    if not quiet:
        _open_and_close(mem, obs.agent_id, ordered, span, skip_p0=skip_p0, sched=sched,
                        ruleset=ruleset, cfgs=cfgs, emit=emit)  # fmt: skip
    _fire_due(mem, obs, span, seg_now, cfgs=cfgs, emit=emit)
    accrued = _accrue(
        ((a, b, span.at(a).state, sched.at(a)) for a, b in pairwise(ordered)), sched, ruleset
    )
    _book(mem, accrued[0])
    _remember(mem, span, seg_now, ordered, first=first, sched=sched, ruleset=ruleset)
    return _settled(obs.agent_id, mem, seg_now, accrued)


def _begin(
    old_mem: AgentMemory | None, obs: AgentObservation, now: datetime
) -> tuple[AgentMemory, _Span]:
    """The memory to settle and the span to settle it over."""
    if old_mem is None:
        # First sight: conditions may have begun before (they use `since`), but time is only
        # accounted from now: the counters must not claim time the monitor did not observe.
        phase = _first_phase(obs, now)
        mem = AgentMemory(
            name=obs.name, team=obs.team, state=phase.state, since=phase.since, accounted_until=now
        )
        return mem, _Span(phase, phase, None, now, now)
    mem = old_mem.copy()
    if obs.name:
        mem.name = obs.name
    if obs.team:
        mem.team = obs.team
    old_phase = _Phase(
        mem.state, mem.since, mem.pause_start, mem.pause_type_start, mem.logged_on_until
    )
    p0 = mem.accounted_until
    end = max(now, p0)  # an out-of-order `now` settles nothing and goes back in time for nothing
    phase, change = _next_phase(old_phase, obs, p0, end)
    change_at = max(change, p0) if change is not None else None
    return mem, _Span(old_phase, phase, change_at, p0, end)


def _events(span: _Span, sched: ScheduleIndex, ruleset: RuleSet) -> set[datetime]:
    """Where something may change within the span: the state, a segment, a break overrun."""
    events: set[datetime] = set()
    if span.change_at is not None:
        events.add(span.change_at)
    events.update(sched.bounds_in(span.p0, span.end))
    pieces = (
        (span.old, span.p0, span.change_at or span.end),
        (span.new, span.change_at or span.p0, span.end),
    )
    for ph, lo, hi in pieces:
        if ph.state.kind is StateKind.PAUSE and ph.pause_start is not None:
            over = sched.overrun_at(ph.pause_start, ruleset.break_activities)
            if over is not None and lo <= over <= hi:
                events.add(over)
    return events


def _open_and_close(
    mem: AgentMemory,
    agent_id: str,
    ordered: Sequence[datetime],
    span: _Span,
    *,
    skip_p0: bool,
    sched: ScheduleIndex,
    ruleset: RuleSet,
    cfgs: Mapping[RuleName, RuleConfig],
    emit: Emitter,
) -> None:
    """At each event point: close the conditions that stopped, open the ones that began."""
    floor: datetime | None = None
    for i, t in enumerate(ordered):
        if i == 0 and skip_p0:
            floor = t
            continue
        holding = _holding(t, span.at(t), sched, ruleset, cfgs)
        for rule in [r for r in mem.open if r not in holding]:
            _close_agent_condition(mem, rule, t=t, cfgs=cfgs, emit=emit, agent_id=agent_id)
        for rule, start in holding.items():
            if rule in mem.open:
                continue
            s = start
            if floor is not None and s < floor:
                s = floor
            closed = mem.last_closed.get(rule)
            if closed is not None and s < closed:
                s = closed
            mem.open[rule] = OpenCondition(since=min(s, t))
        floor = t


def _fire_due(
    mem: AgentMemory,
    obs: AgentObservation,
    span: _Span,
    seg_now: Segment | None,
    *,
    cfgs: Mapping[RuleName, RuleConfig],
    emit: Emitter,
) -> None:
    """Fire the open conditions that have held for their rule's `after` by the span's end."""
    phase, end = span.new, span.end
    target = Target("agent", obs.agent_id, mem.team or None)
    for rule, cond in list(mem.open.items()):
        cfg = cfgs.get(rule)

        def details(
            c: OpenCondition, rule: RuleName = rule, cfg: RuleConfig | None = cfg
        ) -> dict[str, str]:
            assert cfg is not None  # only an enabled rule fires
            d = _agent_details(mem.name, ph=phase, seg=seg_now, since=c.since, cfg=cfg, now=end)
            if rule is RuleName.BREAK_OVERRUN and phase.pause_start is not None:
                d["value"] = _fmt(end - phase.pause_start)
            if obs.first_seen and not obs.since_exact and c.since <= phase.since:
                # the state began before the monitor first saw it: held for at least this long
                d["entry"] = "first_seen"
            return d

        mem.open[rule] = fire_if_due(emit, rule, cfg, cond, target, now=end, details=details)


def _remember(
    mem: AgentMemory,
    span: _Span,
    seg_now: Segment | None,
    ordered: Sequence[datetime],
    *,
    first: bool,
    sched: ScheduleIndex,
    ruleset: RuleSet,
) -> None:
    """Keep the new phase, and since when the agent has been (non-)adherent."""
    phase = span.new
    mem.state = phase.state
    mem.since = phase.since
    mem.pause_start = phase.pause_start
    mem.pause_type_start = phase.type_start
    mem.logged_on_until = phase.logged_on_until
    mem.accounted_until = span.end
    mem.segment = seg_now

    def flag_at(t: datetime) -> bool | None:
        a = _judged(ruleset, sched.at(t))
        return None if a is None else a.allows(span.at(t).state)

    adherent = flag_at(span.end)
    if first:
        mem.adherent_since = max(phase.since, seg_now.start) if seg_now else phase.since
    elif adherent != mem.adherent or mem.adherent_since is None:
        i = len(ordered) - 1
        while i > 0 and flag_at(ordered[i - 1]) == adherent:
            i -= 1
        mem.adherent_since = ordered[i]
    mem.adherent = adherent


def _close_agent_condition(
    mem: AgentMemory,
    rule: RuleName,
    *,
    t: datetime,
    cfgs: Mapping[RuleName, RuleConfig],
    emit: Emitter,
    agent_id: str,
) -> None:
    cond = mem.open.pop(rule)
    mem.last_closed[rule] = t
    cfg = cfgs.get(rule)

    def details(c: OpenCondition) -> dict[str, str]:
        assert cfg is not None  # only an enabled rule fires
        d = {"held_for": _fmt(t - c.since), "threshold": _fmt(cfg.after)}
        if mem.name:
            d["name"] = mem.name
        return d

    target = Target("agent", agent_id, mem.team or None)
    close(emit, rule, cfg, cond, target, ended=t, details=details)


def account_until(
    state: EngineState,
    *,
    now: datetime,
    schedules: Schedules,
    ruleset: RuleSet,
) -> tuple[EngineState, list[Accrual]]:
    """Accrue every known agent's time up to `now` in its last known state (no new observation).

    Closes the books at the end of a replay window. Conditions and alerts are left as they are;
    the next `evaluate_agents` call carries on from `now`.
    """
    now = _utc(now)
    new = state.shallow_copy()
    accruals: list[Accrual] = []
    for agent_id, old in state.agents.items():
        if old.accounted_until >= now:
            continue
        mem = old.copy()
        sched = _schedule_for(schedules.get(agent_id))
        ordered = sorted({mem.accounted_until, now, *sched.bounds_in(mem.accounted_until, now)})
        seconds, pieces = _accrue(
            ((a, b, mem.state, sched.at(a)) for a, b in pairwise(ordered)), sched, ruleset
        )
        _book(mem, seconds)
        mem.accounted_until = now
        mem.segment = sched.at(now)
        new.agents[agent_id] = mem
        if any(seconds):
            accruals.append(Accrual(agent_id, mem.team, *seconds, pieces=pieces))
    return new, accruals


def next_due(
    state: EngineState,
    *,
    now: datetime,
    schedules: Schedules,
    ruleset: RuleSet,
) -> datetime | None:
    """The earliest time after `now` at which an evaluation could change something even if
    no observation changes: a firing deadline, a segment boundary, a break-overrun threshold,
    or (with team_adherence_below on) the next minute of the sliding team window.

    None when nothing is pending. Lets `replay` skip polls that cannot matter.
    """
    now = _utc(now)
    due: list[datetime] = []

    def deadline(rule: RuleName, cond: OpenCondition) -> None:
        cfg = ruleset.enabled(rule)
        if cfg is not None and not cond.firing:
            due.append(cond.since + cfg.after)

    for agent_id, m in state.agents.items():
        for rule, cond in m.open.items():
            deadline(rule, cond)
        sched = _schedule_for(schedules.get(agent_id))
        bounds = sched.bounds_in(now, datetime.max.replace(tzinfo=UTC))
        if bounds:
            due.append(bounds[0])
        if m.state.kind is StateKind.PAUSE and m.pause_start is not None:
            over = sched.overrun_at(m.pause_start, ruleset.break_activities)
            if over is not None:
                due.append(over)
    for q in state.queues.values():
        for rule, cond in q.open.items():
            deadline(rule, cond)
    for endpoint_cond in state.stale.values():
        deadline(RuleName.STALE_DATA, endpoint_cond)
    for tm in state.teams.values():
        for rule, cond in tm.open.items():
            deadline(rule, cond)
        if tm.buckets:
            due.append(now + timedelta(seconds=_BUCKET_SECONDS))
    later = [t for t in due if t > now]
    return min(later) if later else None


# --- teams -----------------------------------------------------------------------------------


def _evaluate_teams(
    new: EngineState,
    now: datetime,
    accruals: Sequence[Accrual],
    ruleset: RuleSet,
    emit: Emitter,
) -> None:
    cfg = ruleset.enabled(RuleName.TEAM_ADHERENCE_BELOW)
    rule = RuleName.TEAM_ADHERENCE_BELOW
    if cfg is None or cfg.threshold is None:
        # disabled: resolve what was firing and forget the windows
        for team, tm in list(new.teams.items()):
            for r, cond in tm.open.items():
                step(emit, r, cfg, cond, Target("team", team, team), holds=False, start=now,
                     ended=now, details=no_details)  # fmt: skip
            del new.teams[team]
        return
    window = cfg.window or DEFAULT_TEAM_WINDOW
    threshold = cfg.threshold
    bucket = int(now.timestamp()) // _BUCKET_SECONDS
    oldest = int((now - window).timestamp()) // _BUCKET_SECONDS
    copies: dict[str, TeamMemory] = {}

    def team_memory(team: str) -> TeamMemory:
        tm = copies.get(team)
        if tm is None:
            old = new.teams.get(team)
            tm = TeamMemory(dict(old.buckets), dict(old.open)) if old else TeamMemory()
            copies[team] = tm
        return tm

    for acc in accruals:
        if acc.team and acc.scheduled_seconds:
            tm = team_memory(acc.team)
            s, a = tm.buckets.get(bucket, (0.0, 0.0))
            tm.buckets[bucket] = (s + acc.scheduled_seconds, a + acc.adherent_seconds)
    for team in sorted(set(new.teams) | set(copies)):
        tm = team_memory(team)
        tm.buckets = {k: v for k, v in tm.buckets.items() if k > oldest}
        sched = sum(s for s, _ in tm.buckets.values())
        adh = sum(a for _, a in tm.buckets.values())
        ratio = adh / sched if sched else 1.0
        holds = sched >= TEAM_MIN_SCHEDULED_SECONDS and ratio < threshold

        def details(c: OpenCondition, team: str = team, ratio: float = ratio) -> dict[str, str]:
            return {
                "name": team,
                "value": f"{ratio:.4f}",
                "threshold": f"{threshold:g}",
                "held_for": _fmt(now - c.since),
                "window": _fmt(window),
            }

        opened = step(emit, rule, cfg, tm.open.pop(rule, None), Target("team", team, team),
                      holds=holds, start=now, ended=now, details=details)  # fmt: skip
        if opened is not None:
            tm.open[rule] = opened
        if tm.buckets or tm.open:
            new.teams[team] = tm
        else:
            new.teams.pop(team, None)


# --- queues ----------------------------------------------------------------------------------


def _queue_value(rule: RuleName, q: QueueObservation, cfg: RuleConfig) -> tuple[bool, str]:
    # a value Puzzel did not report (None) never makes a rule hold
    if rule is RuleName.QUEUE_SLA_BELOW:
        sla = q.sla_percent
        return cfg.threshold is not None and sla is not None and sla < cfg.threshold, _g(sla)
    if rule is RuleName.QUEUE_WAIT_ABOVE:
        wait = q.wait_time_max_seconds
        return cfg.threshold is not None and wait is not None and wait > cfg.threshold, _g(wait)
    size, ready = q.queue_size, q.agents_ready
    holds = size is not None and ready is not None and size > 0 and ready == 0
    return holds, f"queueSize={_g(size)} agentsReady={_g(ready)}"


def _g(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"


def evaluate_queues(
    state: EngineState,
    *,
    tenant: str,
    now: datetime,
    queues: Sequence[QueueObservation],
    ruleset: RuleSet,
) -> QueueResult:
    """Evaluate queue rules at `now`. A queue's condition begins at the first poll showing it.

    Queues absent from `queues` keep their conditions (a missing poll is stale_data's business).
    """
    now = _utc(now)
    new = state.shallow_copy()
    new.tenant = tenant
    emit = Emitter(tenant, now)
    for q in queues:
        old = new.queues.get(q.queue_id)
        mem = QueueMemory(q.description, dict(old.open) if old is not None else {})
        target = Target("queue", q.queue_id)
        for rule in QUEUE_RULES:
            cfg = ruleset.enabled(rule)
            holds, value = (False, "") if cfg is None else _queue_value(rule, q, cfg)

            def details(
                c: OpenCondition, q: QueueObservation = q, value: str = value,
                cfg: RuleConfig | None = cfg,
            ) -> dict[str, str]:  # fmt: skip
                d = {
                    "name": q.description,
                    "queue_name": q.description,
                    "value": value,
                    "held_for": _fmt(now - c.since),
                }
                if cfg is not None and cfg.threshold is not None:
                    d["threshold"] = f"{cfg.threshold:g}"
                return d

            cond = step(emit, rule, cfg, mem.open.pop(rule, None), target, holds=holds,
                        start=now, ended=now, details=details)  # fmt: skip
            if cond is not None:
                mem.open[rule] = cond
        new.queues[q.queue_id] = mem
    emit.out.sort(key=_transition_order)
    return QueueResult(new, emit.out)


# --- staleness -------------------------------------------------------------------------------


def evaluate_staleness(
    state: EngineState,
    *,
    tenant: str,
    now: datetime,
    last_success: Mapping[str, datetime],
    ruleset: RuleSet,
) -> StalenessResult:
    """stale_data: an endpoint has had no successful poll for `after`.

    The condition runs from the last success; a newer success ends it (ideal resolve time = that
    success). Pass the service start time for endpoints that have not succeeded yet.
    """
    now = _utc(now)
    new = state.shallow_copy()
    new.tenant = tenant
    emit = Emitter(tenant, now)
    cfg = ruleset.enabled(RuleName.STALE_DATA)
    rule = RuleName.STALE_DATA
    after = cfg.after if cfg is not None else timedelta(0)
    for endpoint in sorted(set(last_success) | set(new.stale)):
        cond = new.stale.pop(endpoint, None)
        last = last_success.get(endpoint)
        target = Target("tenant", endpoint)
        if cfg is None or last is None:
            step(
                emit, rule, cfg, cond, target, holds=False, start=now, ended=now, details=no_details
            )
            continue
        last = _utc(last)
        if cond is not None and last > cond.since:  # a success since: that episode ended then
            cond = step(emit, rule, cfg, cond, target, holds=False, start=last, ended=last,
                        details=no_details)  # fmt: skip

        def details(c: OpenCondition, endpoint: str = endpoint) -> dict[str, str]:
            return {
                "name": endpoint,
                "value": _iso(c.since),
                "held_for": _fmt(now - c.since),
                "threshold": _fmt(after),
            }

        new.stale[endpoint] = fire_if_due(
            emit, rule, cfg, cond or OpenCondition(since=last), target, now=now, details=details
        )
    emit.out.sort(key=_transition_order)
    return StalenessResult(new, emit.out)


# --- helpers ---------------------------------------------------------------------------------


def _transition_order(t: AlertTransition) -> tuple[datetime, str, str, int]:
    # a resolve and a firing of the same alert at the same ideal time: resolve first
    return (t.ideal_at, t.rule.value, t.subject_id, 0 if t.status == "resolved" else 1)


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
