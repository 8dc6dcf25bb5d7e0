"""Agent rules and accrual: each agent's state against its schedule, piece by piece between two
evaluations (see `monitor.engine.engine` for the timeline model)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, KeysView, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from monitor.core.snapshots import AgentObservation
from monitor.core.states import AgentState, StateKind
from monitor.engine.approvals import Approvals, bounds_in, excuse, overlapping
from monitor.engine.conditions import (
    Emitter,
    OpenCondition,
    Target,
    close,
    fire_if_due,
)
from monitor.engine.conditions import fmt as _fmt
from monitor.engine.conditions import transition_order as _transition_order
from monitor.engine.conditions import utc as _utc
from monitor.engine.groups import _BUCKET_SECONDS, _evaluate_teams
from monitor.engine.memory import AgentMemory, EngineState, QuietPath
from monitor.engine.model import (
    Accrual,
    AccruedPiece,
    Activity,
    AgentEvaluation,
    AlertTransition,
    ApprovedRange,
    RuleConfig,
    RuleName,
    RuleSet,
    Segment,
)
from monitor.engine.schedule import ScheduleIndex, Schedules, _schedule_for

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

_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)

# --- agent conditions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentResult:
    state: EngineState
    evaluations: list[AgentEvaluation]
    transitions: list[AlertTransition]
    accruals: list[Accrual]


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
    approvals: Approvals | None = None,
) -> AgentResult:
    """Evaluate every agent of the tenant at `now`.

    `agents` should be every agent of the tenant seen by this cycle (all group snapshots):
    agents that appear only in `schedules` are taken to be logged_off. Pass `schedules` indexed
    (`index_schedules`) when evaluating the same ones every cycle. `approvals` are the approved
    ranges per agent (`monitor.engine.approvals`): they excuse the agent's exceptions.
    `state` is not modified; the returned state is a new object sharing unchanged members.
    """
    now = _utc(now)
    state, caught = settle_lazy(state, schedules=schedules, ruleset=ruleset)
    new = state.shallow_copy()
    new.tenant = tenant
    new.listing = None  # a lazy evaluation's cache of the evaluations: not kept here
    ctx = _context(new, tenant, now, ruleset)
    evaluations: list[AgentEvaluation] = []
    accruals: list[Accrual] = []
    for obs in _all_observations(agents, new, schedules, now):
        sched = _schedule_for(schedules.get(obs.agent_id))
        windows = approvals.get(obs.agent_id, ()) if approvals else ()
        ev, acc, _ = _evaluate_one(new, obs, sched, windows, ctx)
        evaluations.append(ev)
        if acc is not None:
            accruals.append(acc)

    _evaluate_teams(new, now, accruals, ruleset, ctx.emit)
    ctx.emit.out.sort(key=_transition_order)
    evaluations.sort(key=lambda e: e.agent_id)
    return AgentResult(new, evaluations, ctx.emit.out, caught + accruals)


@dataclass(frozen=True, slots=True)
class _Context:
    """What every agent's evaluation in one call shares."""

    now: datetime
    ruleset: RuleSet
    cfgs: Mapping[RuleName, RuleConfig]
    emit: Emitter
    key: str  # the ruleset's key
    rules_changed: bool


def _context(new: EngineState, tenant: str, now: datetime, ruleset: RuleSet) -> _Context:
    """The call's context; records the ruleset's key in `new`."""
    key = _ruleset_key(ruleset)
    rules_changed = key != new.ruleset_key
    new.ruleset_key = key
    cfgs = {r: c for r in AGENT_RULES if (c := ruleset.enabled(r)) is not None}
    return _Context(now, ruleset, cfgs, Emitter(tenant, now), key, rules_changed)


def _all_observations(
    agents: Sequence[AgentObservation], new: EngineState, schedules: Schedules, now: datetime
) -> list[AgentObservation]:
    """`agents`, then a logged_off observation of each scheduled agent that none lists."""
    seen: set[str] = set()
    observations = list(agents)
    for obs in observations:
        seen.add(obs.agent_id)
    for agent_id in schedules:
        if agent_id in seen:
            continue
        observations.append(_absent(agent_id, new.agents.get(agent_id), schedules, now))
        seen.add(agent_id)
    return observations


def _evaluate_one(
    new: EngineState,
    obs: AgentObservation,
    sched: ScheduleIndex,
    windows: Sequence[ApprovedRange],
    ctx: _Context,
) -> tuple[AgentEvaluation, Accrual | None, bool]:
    """Evaluate one agent from its memory in `new` and store the new memory there; the flag
    says whether it took the quiet path."""
    old_mem = new.agents.get(obs.agent_id)
    now = ctx.now
    quiet = (
        None
        if old_mem is None
        or ctx.rules_changed
        or (windows and overlapping(windows, old_mem.accounted_until, now))
        else _evaluate_quiet_agent(
            old_mem, obs, sched=sched, now=now, ruleset=ctx.ruleset, cfgs=ctx.cfgs, rkey=ctx.key
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
            ruleset=ctx.ruleset,
            cfgs=ctx.cfgs,
            emit=ctx.emit,
            rules_changed=ctx.rules_changed,
            windows=windows,
        )
    new.agents[obs.agent_id] = mem
    return ev, acc, quiet is not None


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
    rkey: str,
) -> tuple[AgentMemory, AgentEvaluation, Accrual | None] | None:
    """The common case in one piece, or None when `_evaluate_agent` must look closer.

    Quiet means: the same state as before, no segment boundary or break overrun since the last
    evaluation, the same segment in force, and no condition reaching its `after`. Then nothing
    can open, close or fire, and the elapsed time accrues as one piece. Most agents are quiet
    in most cycles, so this is what keeps a cycle cheap at thousands of agents: what a quiet
    evaluation repeats is worked out once (`QuietPath`) and reused until its horizon.
    """
    p0 = mem.accounted_until
    end = now
    if (
        end <= p0
        or (obs.state is not mem.state and obs.state != mem.state)
        or _utc(obs.since) > p0  # left and re-entered in between
        or (obs.name and obs.name != mem.name)
        or (obs.team and obs.team != mem.team)
    ):
        return None
    q = mem.quiet
    if q is None or q.sched is not sched or q.rkey != rkey:
        q = _quiet_path(mem, obs.agent_id, sched=sched, ruleset=ruleset, cfgs=cfgs, rkey=rkey)
        if q is None:
            return None
    if q.horizon is not None and end >= q.horizon:
        return None
    return _advance(mem, obs.agent_id, q, sched, end)


def _quiet_path(
    mem: AgentMemory,
    agent_id: str,
    *,
    sched: ScheduleIndex,
    ruleset: RuleSet,
    cfgs: Mapping[RuleName, RuleConfig],
    rkey: str,
) -> QuietPath | None:
    """What stays the same for `mem` from its `accounted_until` until the horizon, or None
    when its memory is not settled enough for the quiet path."""
    p0 = mem.accounted_until
    seg = sched.at(p0)  # the segment in force until the next boundary
    if mem.adherent_since is None or (seg is not mem.segment and seg != mem.segment):
        return None
    st = mem.state
    act = _judged(ruleset, seg)
    adherent = None if act is None else act.allows(st)
    if adherent != mem.adherent:
        return None
    # the quiet path ends at the first of: a boundary in (p0, end], a break overrun in
    # [p0, end], a pending condition's deadline at or before end
    due = [t for t in (sched.next_bound(p0),) if t is not None]
    if st.kind is StateKind.PAUSE and mem.pause_start is not None:
        over = sched.overrun_at(mem.pause_start, ruleset.break_activities)
        if over is not None and over >= p0:
            due.append(over)
    for rule, cond in mem.open.items():
        cfg = cfgs.get(rule)
        if not cond.firing and cfg is not None:
            due.append(cond.since + cfg.after)
    productive = ruleset.activities.get(ruleset.productive_activity)
    prod = productive is not None and productive.allows(st)
    prod_sched = seg is not None and seg.activity == ruleset.productive_activity
    # inside a shift the piece's anchor is that shift's start until the next boundary; outside
    # one it depends on how near the next shift the piece ends (`shift_anchor`)
    shift = sched.shift_at(p0)
    ev = AgentEvaluation(
        agent_id=agent_id,
        team=mem.team,
        state=st,
        state_since=mem.since,
        activity=seg.activity if seg is not None else None,
        adherent=mem.adherent,
        adherent_since=mem.adherent_since,
    )
    return QuietPath(sched, rkey, min(due) if due else None, ev, act is not None,
                     bool(adherent), prod, prod_sched,
                     shift[0] if shift is not None else None, shift is not None)  # fmt: skip


def _advance(
    mem: AgentMemory, agent_id: str, q: QuietPath, sched: ScheduleIndex, end: datetime
) -> tuple[AgentMemory, AgentEvaluation, Accrual | None]:
    """`mem` accounted up to `end` along its quiet path: the same seconds and piece as
    `_accrue` of the one piece, without working out again what `q` holds."""
    p0 = mem.accounted_until
    new = mem.advanced(q, end)
    if not (q.scheduled or q.productive or q.productive_scheduled):
        return new, q.evaluation, None
    anchor = q.anchor if q.anchored else sched.shift_anchor(p0, end)
    piece = AccruedPiece(
        p0, end, anchor, q.scheduled, q.adherent, q.productive, q.productive_scheduled
    )
    dur = (end - p0).total_seconds()  # what `advanced` added
    seconds = (
        dur if q.scheduled else 0.0,
        dur if q.adherent else 0.0,
        dur if q.productive else 0.0,
        dur if q.productive_scheduled else 0.0,
    )
    acc = Accrual(agent_id, mem.team, *seconds, pieces=(piece,))
    return new, q.evaluation, acc


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
    windows: Sequence[ApprovedRange] = (),
) -> tuple[AgentMemory, AgentEvaluation, Accrual | None]:
    mem, span = _begin(old_mem, obs, now)
    first = old_mem is None
    events = _events(span, sched, ruleset) | bounds_in(windows, span.p0, span.end)
    ordered = sorted(events | {span.p0, span.end})
    seg_now = sched.at(span.end)
    # p0 was evaluated by the previous call; look again only if what held there may differ
    skip_p0 = not first and not rules_changed and span.change_at != span.p0 and len(ordered) > 1
    # Nothing happened since p0 (same state, no boundary, same segment in force, no approval
    # that may have been made since): what held at p0 still holds, so only the firing
    # deadlines below need checking.
    quiet = (
        skip_p0
        and not events
        and seg_now == mem.segment
        and not overlapping(windows, span.p0, span.end)
    )
    if not quiet:
        _open_and_close(mem, obs.agent_id, ordered, span, skip_p0=skip_p0, sched=sched,
                        ruleset=ruleset, cfgs=cfgs, emit=emit, windows=windows)  # fmt: skip
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
    windows: Sequence[ApprovedRange] = (),
) -> None:
    """At each event point: close the conditions that stopped, open the ones that began."""
    floor: datetime | None = None
    for i, t in enumerate(ordered):
        if i == 0 and skip_p0:
            floor = t
            continue
        holding = _holding(t, span.at(t), sched, ruleset, cfgs)
        approved = excuse(holding, t, windows)
        reason = approved.resolution if approved is not None else None
        for rule in [r for r in mem.open if r not in holding]:
            _close_agent_condition(
                mem, rule, t=t, cfgs=cfgs, emit=emit, agent_id=agent_id, reason=reason
            )
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
    reason: str | None = None,
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
    close(emit, rule, cfg, cond, target, ended=t, details=details, reason=reason)


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
    state, accruals = settle_lazy(state, schedules=schedules, ruleset=ruleset)
    new = state.shallow_copy()
    for agent_id, old in state.agents.items():
        if old.accounted_until >= now:
            continue
        mem, acc = _account(agent_id, old, now, _schedule_for(schedules.get(agent_id)), ruleset)
        new.agents[agent_id] = mem
        if acc is not None:
            accruals.append(acc)
    return new, accruals


def _account(
    agent_id: str, old: AgentMemory, now: datetime, sched: ScheduleIndex, ruleset: RuleSet
) -> tuple[AgentMemory, Accrual | None]:
    """`old` accrued up to `now` in its last known state (see `account_until`)."""
    mem = old.copy()
    ordered = sorted({mem.accounted_until, now, *sched.bounds_in(mem.accounted_until, now)})
    seconds, pieces = _accrue(
        ((a, b, mem.state, sched.at(a)) for a, b in pairwise(ordered)), sched, ruleset
    )
    _book(mem, seconds)
    mem.accounted_until = now
    mem.segment = sched.at(now)
    acc = Accrual(agent_id, mem.team, *seconds, pieces=pieces) if any(seconds) else None
    return mem, acc


def settle_lazy(
    state: EngineState, *, schedules: Schedules, ruleset: RuleSet
) -> tuple[EngineState, list[Accrual]]:
    """`state` without lazy or restored agents (`EngineState.lazy`, `restored`): each accounted
    up to `quiet_until`, as the eager engine holds it, and the accruals of the stretches that
    brings (for the history: the team windows counted that time as it passed). `state` itself
    when there are none."""
    until = state.quiet_until
    if until is None or not (state.lazy or state.restored):
        return state, []
    new = state.shallow_copy()
    accruals: list[Accrual] = []
    for agent_id, lz in state.lazy.items():
        mem = new.agents[agent_id]
        if until > mem.accounted_until:
            sched = _schedule_for(schedules.get(agent_id))  # used for unanchored pieces only
            new.agents[agent_id], _, acc = _advance(mem, agent_id, lz.quiet, sched, until)
            if acc is not None:
                accruals.append(acc)
    for agent_id in sorted(state.restored - state.lazy.keys()):
        old = new.agents.get(agent_id)
        if old is not None and until > old.accounted_until:
            sched = _schedule_for(schedules.get(agent_id))
            new.agents[agent_id], acc = _account(agent_id, old, until, sched, ruleset)
            if acc is not None:
                accruals.append(acc)
    new.lazy, new.rates, new.restored = {}, {}, frozenset()
    return new, accruals


def next_due(
    state: EngineState,
    *,
    now: datetime,
    schedules: Schedules,
    ruleset: RuleSet,
    approvals: Approvals | None = None,
) -> datetime | None:
    """The earliest time after `now` at which an evaluation could change something even if
    no observation changes: a firing deadline, a segment boundary, a break-overrun threshold,
    an approved range's start or end, or (with team_adherence_below on) the next minute of the
    sliding team window.

    None when nothing is pending. Lets `replay` skip polls that cannot matter.
    """
    now = _utc(now)
    due: list[datetime] = []

    def deadline(rule: RuleName, cond: OpenCondition) -> None:
        cfg = ruleset.enabled(rule)
        if cfg is not None and not cond.firing:
            due.append(cond.since + cfg.after)

    # a pass over the agents reads only what is rare (open conditions, pauses); the segment
    # boundaries of all agents come from one sorted union (`_union_bounds`)
    pause = StateKind.PAUSE
    for agent_id, m in state.agents.items():
        for rule, cond in m.open.items():
            deadline(rule, cond)
        if m.state.kind is pause and m.pause_start is not None:
            sched = _schedule_for(schedules.get(agent_id))
            over = sched.overrun_at(m.pause_start, ruleset.break_activities)
            if over is not None:
                due.append(over)
    bounds = _union_bounds(state.agents.keys(), schedules)
    i = bisect.bisect_right(bounds, now)
    if i < len(bounds):
        due.append(bounds[i])
    for windows in (approvals or {}).values():
        due += [t for w in windows for t in (w.start, w.end)]
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


# The last union of segment boundaries `next_due` worked out: (the schedules mapping, the agents
# it covers, their bounds sorted). A replay asks once per poll with the same schedules and the
# same agents, so the union is made once per schedule load instead of one bisection per agent
# per call. A memo, not state: the result is the same with or without it.
_UNION: list[tuple[Schedules, frozenset[str], list[datetime]]] = []


def _union_bounds(agents: KeysView[str], schedules: Schedules) -> list[datetime]:
    """Every segment boundary of the schedules of `agents`, sorted (the mapping is taken to be
    unchanged while it is the same object: the pipeline replaces it on a reload)."""
    if _UNION:
        known, ids, bounds = _UNION[0]
        if known is schedules and agents == ids:
            return bounds
    ids = frozenset(agents)
    union: set[datetime] = set()
    for agent_id in ids:
        sched = schedules.get(agent_id)
        if sched is not None:
            union.update(_schedule_for(sched).bounds_in(_MIN, _MAX))
    bounds = sorted(union)
    _UNION[:] = [(schedules, ids, bounds)]
    return bounds
