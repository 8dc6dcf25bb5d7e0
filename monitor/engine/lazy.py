"""Lazy evaluation: what `evaluate_agents` gives, at a cost proportional to the agents whose
input changed or whose horizon came, not to all agents.

An agent on its quiet path (`QuietPath`: same state, no boundary, no pending deadline) is not
re-made every cycle: it joins `EngineState.lazy` with its memory settled up to that evaluation,
and from there it accrues at the quiet path's flags up to the state's `quiet_until` (the latest
evaluation). Whatever needs "up to now" derives it (`EngineState.current`, `totals`); the team
windows count the lazy agents per team (`EngineState.rates`) and add `rates x elapsed` each
cycle, which is what the eager engine adds one accrual at a time. A lazy agent is materialised
(its memory advanced, one accrual piece for the whole quiet stretch) when its observation is
not the very same object and says something new, when its horizon comes, when an approval
touches it, when the rules or its schedule change, when it is not listed, and at each 15-minute
history slot bound (the history then lags by at most one slot; the pieces are coarser but
`monitor.history.filing` cuts them at the slot bounds). Agents whose pieces would need a shift
anchor worked out per piece (unscheduled time near a shift) are not made lazy.

The saved state holds a lazy agent's memory as settled (the history has its time up to there)
and, in its header, which agents were lazy up to when (`EngineState.restored`): the first
evaluation after a load brings them up to that time without counting it again in the team
windows (`settle_lazy`), so a restart neither loses nor double-counts time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from monitor.core.snapshots import AgentObservation
from monitor.engine.agents import (
    AgentResult,
    _absent,
    _advance,
    _Context,
    _context,
    _evaluate_one,
    evaluate_agents,
    settle_lazy,
)
from monitor.engine.approvals import Approvals, overlapping
from monitor.engine.conditions import transition_order as _transition_order
from monitor.engine.conditions import utc as _utc
from monitor.engine.groups import _evaluate_teams
from monitor.engine.memory import EngineState, LazyAgent, QuietPath
from monitor.engine.model import Accrual, AgentEvaluation, ApprovedRange, RuleSet
from monitor.engine.schedule import ScheduleIndex, Schedules, _schedule_for

# the adherence history's interval (monitor.history.filing.SLOT_SECONDS; the engine does not
# import the history): a lazy agent is materialised at each bound
HISTORY_SLOT_SECONDS = 900


def evaluate_agents_lazily(
    state: EngineState,
    *,
    tenant: str,
    now: datetime,
    agents: Sequence[AgentObservation],
    schedules: Schedules,
    ruleset: RuleSet,
    approvals: Approvals | None = None,
) -> AgentResult:
    """`evaluate_agents` with lazy quiet agents (see the module docstring): the same
    evaluations and transitions; `state.current(...)` and `state.totals()` equal what the eager
    engine's memory holds; the accruals are the history's (coarser pieces, the same seconds per
    slot once materialised)."""
    now = _utc(now)
    ids = {o.agent_id for o in agents}
    if len(ids) != len(agents):
        # an agent listed twice is evaluated twice in a row: the eager engine does that
        return evaluate_agents(
            state,
            tenant=tenant,
            now=now,
            agents=agents,
            schedules=schedules,
            ruleset=ruleset,
            approvals=approvals,
        )
    caught: list[Accrual] = []
    if state.restored:
        state, caught = settle_lazy(state, schedules=schedules, ruleset=ruleset)
    new = state.shallow_copy()
    new.tenant = tenant
    ctx = _context(new, tenant, now, ruleset)
    observations = list(agents)
    for agent_id in schedules:
        if agent_id not in ids:
            observations.append(_absent(agent_id, new.agents.get(agent_id), schedules, now))
            ids.add(agent_id)
    cycle = _Cycle(new, ctx, new.quiet_until, caught)
    prev = cycle.prev
    # the common case, inline: a lazy agent with the very same observation, before its
    # horizon and the next slot bound, same schedule, no approval (`_still_quiet` in full)
    fast = prev is not None and now > prev and not ctx.rules_changed
    lazy_get, sched_get = new.lazy.get, schedules.get
    approved = approvals or {}
    skipped = 0
    for obs in observations:
        aid = obs.agent_id
        lz = lazy_get(aid)
        if (
            fast
            and lz is not None
            and obs is lz.obs
            and now < lz.until
            and lz.quiet.sched is sched_get(aid)
            and aid not in approved
        ):
            skipped += 1
            continue
        cycle.evaluate(obs, schedules, approvals)
    cycle.lazy_seen += skipped
    cycle.wake_unlisted(ids)
    cycle.teams()
    new.quiet_until = now
    ctx.emit.out.sort(key=_transition_order)
    evaluations = _listing(new, observations, cycle.changed, ids)
    return AgentResult(new, evaluations, ctx.emit.out, cycle.history)


class _Cycle:
    """One lazy evaluation's working state."""

    __slots__ = ("changed", "ctx", "history", "joiners", "lazy_seen", "new", "prev", "team")

    def __init__(
        self, new: EngineState, ctx: _Context, prev: datetime | None, caught: list[Accrual]
    ) -> None:
        self.new = new
        self.ctx = ctx
        self.prev = prev  # up to when the lazy agents are accounted
        self.history: list[Accrual] = caught  # the accruals for the history
        self.team: list[Accrual] = []  # this cycle's accruals for the team windows
        self.changed: dict[str, AgentEvaluation] = {}
        self.joiners: list[AgentObservation] = []  # took the quiet path this cycle
        self.lazy_seen = 0  # lazy agents listed this cycle that stay lazy

    def evaluate(
        self, obs: AgentObservation, schedules: Schedules, approvals: Approvals | None
    ) -> None:
        aid = obs.agent_id
        sched = _schedule_for(schedules.get(aid))
        windows = approvals.get(aid, ()) if approvals else ()
        lz = self.new.lazy.get(aid)
        if lz is not None:
            if self._still_quiet(lz, obs, sched, windows):
                self.lazy_seen += 1  # listed and still lazy
                if self.ctx.now >= lz.until:  # a history slot bound (the horizon is later)
                    self._rebase(aid, lz, obs, sched)
                elif obs is not lz.obs:
                    self.new.lazy[aid] = replace(lz, obs=obs)
                return
            self._wake(aid, lz, sched)
        ev, acc, quiet = _evaluate_one(self.new, obs, sched, windows, self.ctx)
        self.changed[aid] = ev
        if acc is not None:
            self.history.append(acc)
            self.team.append(acc)
        if quiet:
            self.joiners.append(obs)

    def _still_quiet(
        self,
        lz: LazyAgent,
        obs: AgentObservation,
        sched: ScheduleIndex,
        windows: Sequence[ApprovedRange],
    ) -> bool:
        """Whether the eager engine would take the quiet path for this agent from `prev` to
        now with the same `QuietPath` (`_evaluate_quiet_agent`'s tests)."""
        now, prev, q = self.ctx.now, self.prev, lz.quiet
        if (
            prev is None
            or now <= prev
            or self.ctx.rules_changed
            or q.sched is not sched
            or (q.horizon is not None and now >= q.horizon)
        ):
            return False
        if windows and overlapping(windows, prev, now):
            return False
        if obs is lz.obs:
            return True
        mem = self.new.agents[obs.agent_id]
        return not (
            (obs.state is not mem.state and obs.state != mem.state)
            or _utc(obs.since) > prev
            or (obs.name and obs.name != mem.name)
            or (obs.team and obs.team != mem.team)
        )

    def _rebase(self, aid: str, lz: LazyAgent, obs: AgentObservation, sched: ScheduleIndex) -> None:
        """Materialise up to now and stay lazy (a history slot bound passed)."""
        mem, _, acc = _advance(self.new.agents[aid], aid, lz.quiet, sched, self.ctx.now)
        self.new.agents[aid] = mem
        if acc is not None:
            self.history.append(acc)  # the team windows count it through `rates`
        self.new.lazy[aid] = _lazy(lz.quiet, obs, self.ctx.now)

    def _wake(self, aid: str, lz: LazyAgent, sched: ScheduleIndex) -> None:
        """Materialise up to `prev` (as the eager engine holds it) and leave the lazy set."""
        mem = self.new.agents[aid]
        prev = self.prev
        if prev is not None and prev > mem.accounted_until:
            mem, _, acc = _advance(mem, aid, lz.quiet, sched, prev)
            self.new.agents[aid] = mem
            if acc is not None:
                self.history.append(acc)
        del self.new.lazy[aid]
        _count(self.new, mem.team, lz.quiet, -1)

    def wake_unlisted(self, ids: set[str]) -> None:
        """Lazy agents this cycle did not list stay where the eager engine leaves them (the
        lazy set holds the listed ones that stayed, counted in `lazy_seen`, and these)."""
        lazy = self.new.lazy
        if self.lazy_seen == len(lazy):
            return
        for aid in [a for a in lazy if a not in ids]:
            self._wake(aid, lazy[aid], _schedule_for(None))

    def teams(self) -> None:
        """The team windows: this cycle's accruals, plus the lazy agents' time since `prev`;
        then this cycle's quiet agents join the lazy set."""
        new, now, prev = self.new, self.ctx.now, self.prev
        extra: dict[str, tuple[float, float]] = {}
        if prev is not None and now > prev and new.rates:
            d = (now - prev).total_seconds()
            extra = {team: (d * s, d * a) for team, (s, a) in new.rates.items() if s}
        _evaluate_teams(new, now, self.team, self.ctx.ruleset, self.ctx.emit, lazy_seconds=extra)
        for obs in self.joiners:
            mem = new.agents[obs.agent_id]
            q = mem.quiet
            if q is not None and _may_be_lazy(q) and mem.accounted_until == now:
                new.lazy[obs.agent_id] = _lazy(q, obs, now)
                _count(new, mem.team, q, 1)


def _may_be_lazy(q: QuietPath) -> bool:
    """Whether one piece over the whole quiet stretch files as the eager pieces do: its shift
    anchor is fixed, or it accrues nothing."""
    return q.anchored or not (q.scheduled or q.productive or q.productive_scheduled)


def _lazy(q: QuietPath, obs: object, base: datetime) -> LazyAgent:
    slot = (int(base.timestamp()) // HISTORY_SLOT_SECONDS + 1) * HISTORY_SLOT_SECONDS
    slot_end = datetime.fromtimestamp(slot, UTC)
    until = slot_end if q.horizon is None else min(slot_end, q.horizon)
    return LazyAgent(q, obs, slot_end, until)


def _count(state: EngineState, team: str, q: QuietPath, sign: int) -> None:
    """Count a lazy agent in (or out of) its team's rates, as the eager team windows would
    count its accruals (scheduled seconds of an agent with a team)."""
    if not (team and q.scheduled):
        return
    s, a = state.rates.get(team, (0, 0))
    s, a = s + sign, a + (sign if q.adherent else 0)
    if s:
        state.rates[team] = (s, a)
    else:
        state.rates.pop(team, None)


def _listing(
    new: EngineState,
    observations: Sequence[AgentObservation],
    changed: dict[str, AgentEvaluation],
    ids: set[str],
) -> list[AgentEvaluation]:
    """Every agent's evaluation, sorted by agent: the last list with this cycle's new ones in
    place while the agents are the same, else sorted afresh."""
    listing = new.listing
    if listing is not None and listing[1].keys() == ids:
        evaluations, index = listing
        out = evaluations.copy()
        for aid, ev in changed.items():
            out[index[aid]] = ev
    else:
        lazy = new.lazy
        out = sorted(
            (changed.get(o.agent_id) or lazy[o.agent_id].quiet.evaluation for o in observations),
            key=lambda e: e.agent_id,
        )
        index = {e.agent_id: i for i, e in enumerate(out)}
    new.listing = (out, index)
    return list(out)  # the kept list is copied before it is changed; so is the one handed out
