"""One tenant's path from snapshots to alert transitions: the imperative shell around the engine.

Per agent-state cycle: load the schedules around `now` (cached by the store's version counter),
run the pure engine, hand the transitions to the alert publisher (the durable outbox) and to any
observers, then persist the engine's memory. Transitions are published *before* the state is
saved: a crash between the two re-evaluates from the older state and re-emits the same
transitions, which the outbox's per-sink idempotency records absorb; the other order could lose
one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from redis.exceptions import RedisError

from monitor.core.clock import Clock
from monitor.core.snapshots import AgentSnapshot, QueueSnapshot, TickerSnapshot
from monitor.engine.agents import settle_lazy
from monitor.engine.approvals import Approvals
from monitor.engine.engine import (
    EngineState,
    ScheduleIndex,
    account_until,
    evaluate_queues,
    evaluate_staleness,
    index_schedules,
)
from monitor.engine.lazy import evaluate_agents_lazily
from monitor.engine.memory import AgentMemory, CurrentTotals
from monitor.engine.model import (
    Accrual,
    AgentEvaluation,
    AlertTransition,
    ApprovedRange,
    RuleSet,
    Segment,
)
from monitor.ingest.tracker import STATE_VERSION as TRACKER_STATE_VERSION
from monitor.ingest.tracker import StateTracker
from monitor.pipeline.leases import FencedOut
from monitor.pipeline.state_store import EngineStateStore

log = structlog.get_logger(__name__)

TransitionObserver = Callable[[Sequence[AlertTransition]], Awaitable[None]]
# Told each cycle's accruals (the adherence history, which may buffer them).
AccrualObserver = Callable[[Sequence[Accrual]], Awaitable[None]]
# Run before every save of the engine state: what was buffered from the accruals is then durable
# before the state that would not account that time again is.
PersistHook = Callable[[], Awaitable[None]]
# Told every queue snapshot (the queue interval statistics).
QueueObserver = Callable[[QueueSnapshot], Awaitable[None]]


class ScheduleSource(Protocol):
    async def segments_between(
        self, tenant: str, start: datetime, end: datetime
    ) -> dict[str, list[Segment]]: ...

    async def version(self, tenant: str) -> int: ...


class ApprovalSource(Protocol):
    """The approved ranges (the adherence history's approvals), read again when their
    version counter moves: an approval made by another process takes effect next cycle."""

    async def ranges(self, tenant: str, since: datetime) -> dict[str, list[ApprovedRange]]: ...

    async def version(self, tenant: str) -> int: ...


class AlertPublisher(Protocol):
    async def publish_transitions(self, transitions: Sequence[AlertTransition]) -> None: ...


class StaticSchedules:
    """Schedules held in memory (tests, and sources that are not Redis)."""

    def __init__(self, by_tenant: Mapping[str, Mapping[str, Sequence[Segment]]]) -> None:
        self._by_tenant = {t: {a: list(s) for a, s in m.items()} for t, m in by_tenant.items()}

    async def segments_between(
        self, tenant: str, start: datetime, end: datetime
    ) -> dict[str, list[Segment]]:
        return {
            agent: [s for s in segs if s.end > start and s.start < end]
            for agent, segs in self._by_tenant.get(tenant, {}).items()
        }

    async def version(self, tenant: str) -> int:
        return 0


@dataclass
class _ScheduleCache:
    version: int
    start: datetime
    end: datetime
    segments: dict[str, ScheduleIndex]  # indexed once per load, reused every cycle
    checked_at: datetime


class TenantPipeline:
    """Snapshots in, alert transitions out, engine memory persisted. Also the exporter's
    `EngineView` for this tenant."""

    def __init__(
        self,
        *,
        tenant: str,
        ruleset: RuleSet,
        schedules: ScheduleSource,
        state_store: EngineStateStore,
        clock: Clock,
        publisher: AlertPublisher | None = None,
        observers: Sequence[TransitionObserver] = (),
        accrual_observers: Sequence[AccrualObserver] = (),
        before_persist: Sequence[PersistHook] = (),
        queue_observers: Sequence[QueueObserver] = (),
        approvals: ApprovalSource | None = None,
        schedule_window: timedelta = timedelta(hours=24),
        schedule_check_interval: timedelta = timedelta(seconds=30),
        persist_interval: timedelta = timedelta(seconds=30),
    ) -> None:
        self.tenant = tenant
        self.ruleset = ruleset
        self._schedules = schedules
        self._store = state_store
        self._clock = clock
        self._publisher = publisher
        self._observers = list(observers)
        self._accrual_observers = list(accrual_observers)
        self._before_persist = list(before_persist)
        self._queue_observers = list(queue_observers)
        self._approvals = approvals
        self._approved: tuple[int, Approvals] | None = None  # (version, ranges)
        self._window = schedule_window
        self._cache: _ScheduleCache | None = None
        # A schedule edit takes effect within this long; the version is not read every cycle.
        self._check_interval = schedule_check_interval
        # The engine's memory is saved with every transition, and otherwise at most this often:
        # a restart then resumes from a state at most this old, which re-accounts that stretch
        # from the next observation but can neither repeat nor lose a transition.
        self._persist_interval = persist_interval
        self._persisted_at: datetime | None = None
        self.state = EngineState()
        # one evaluation at a time: each starts from the state the previous one committed (two
        # at once, e.g. an agent cycle and the staleness check, would each commit a state that
        # lacks the other's changes, and a condition lost that way fires again)
        self._evaluating = asyncio.Lock()
        self.evaluations: list[AgentEvaluation] = []
        # `totals_by_agent` of the lazy state it was derived from (one derivation per state)
        self._current: tuple[EngineState, Mapping[str, AgentMemory | CurrentTotals]] | None = None
        self.open_transitions: dict[str, AlertTransition] = {}

    async def start(self) -> None:
        """Load the engine's memory from the store (after a restart)."""
        saved = await self._store.load(self.tenant)
        if saved is not None:
            self.state = saved
            log.info("engine state restored", tenant=self.tenant)
        self.open_transitions = {t.key: t for t in self.state.firing_alerts()}

    async def schedules_at(self, now: datetime) -> dict[str, ScheduleIndex]:
        cache = self._cache
        margin = self._window / 4
        in_window = cache is not None and cache.start + margin <= now <= cache.end - margin
        if cache is not None and in_window and abs(now - cache.checked_at) < self._check_interval:
            return cache.segments
        version = await self._schedules.version(self.tenant)
        if version == 0 and cache is not None and cache.version > 0:
            # the schedules vanished (Redis lost its data): keep judging by the last known ones
            # rather than by none at all; the Redis guard reports it and /readyz fails
            cache.checked_at = now
            return cache.segments
        if cache is None or cache.version != version or not in_window:
            start, end = now - self._window, now + self._window
            segs = await self._schedules.segments_between(self.tenant, start, end)
            cache = self._cache = _ScheduleCache(version, start, end, index_schedules(segs), now)
        cache.checked_at = now
        return cache.segments

    async def approvals_at(self, now: datetime) -> Approvals:
        """The approved ranges that may matter at `now` (one GET a cycle; reloaded when an
        approval or withdrawal moved the version)."""
        if self._approvals is None:
            return {}
        version = await self._approvals.version(self.tenant)
        if self._approved is None or self._approved[0] != version:
            ranges = await self._approvals.ranges(self.tenant, now - self._window)
            self._approved = (version, ranges)
        return self._approved[1]

    # --- SnapshotSink -------------------------------------------------------------------------

    async def on_agent_cycle(self, tenant: str, snapshots: Sequence[AgentSnapshot]) -> None:
        if not snapshots:
            return
        now = max(s.taken_at for s in snapshots)
        agents = [a for s in snapshots for a in s.agents]
        async with self._evaluating:
            schedules = await self.schedules_at(now)
            approvals = await self.approvals_at(now)
            # every read awaited before `self.state` is taken, and under the lock: the staleness
            # check and the queue poll commit states of their own, and an engine state taken
            # before they did would drop what they committed (an alert would fire twice)
            # lazily: an agent on its quiet path is not re-made every cycle (monitor.engine.lazy);
            # what reads "up to now" derives it (`totals_by_agent`, `accrued`, `last_evaluated`)
            result = evaluate_agents_lazily(
                self.state,
                tenant=self.tenant,
                now=now,
                agents=agents,
                schedules=schedules,
                ruleset=self.ruleset,
                approvals=approvals,
            )
            self.evaluations = list(result.evaluations)
            await self._tell_accruals(result.accruals)
            await self._commit(result.state, result.transitions)

    async def on_queues(self, tenant: str, snapshot: QueueSnapshot) -> None:
        async with self._evaluating:
            result = evaluate_queues(
                self.state,
                tenant=self.tenant,
                now=snapshot.taken_at,
                queues=snapshot.queues,
                ruleset=self.ruleset,
            )
            await self._commit(result.state, result.transitions)
        for observer in self._queue_observers:
            await observer(snapshot)

    async def on_ticker(self, tenant: str, snapshot: TickerSnapshot) -> None:
        return None  # tickers go to the exporter only

    async def close_books(self, now: datetime) -> list[Accrual]:
        """Account time up to `now` without a new observation (end of a replay window)."""
        async with self._evaluating:
            schedules = await self.schedules_at(now)
            state, accruals = account_until(
                self.state, now=now, schedules=schedules, ruleset=self.ruleset
            )
            await self._tell_accruals(accruals)
            self.state = state
            await self._save()
        return list(accruals)

    async def _tell_accruals(self, accruals: Sequence[Accrual]) -> None:
        if accruals:
            for observer in self._accrual_observers:
                await observer(accruals)

    async def _commit(self, state: EngineState, transitions: Sequence[AlertTransition]) -> None:
        if transitions:
            if self._publisher is not None:
                await self._publisher.publish_transitions(transitions)
            for observer in self._observers:
                await observer(transitions)
            for t in transitions:
                if t.status == "firing":
                    self.open_transitions[t.key] = t
                else:
                    self.open_transitions.pop(t.key, None)
        self.state = state
        now = self._clock.now()
        if (
            transitions
            or self._persisted_at is None
            or abs(now - self._persisted_at) >= self._persist_interval
        ):
            await self._save()

    async def persist(self, *, whole: bool = False) -> None:
        """Save the engine's memory now (on shutdown, a handover, after Redis lost its data);
        `whole`: all of it, not only what changed since the last save. The lazy agents' books
        are brought up to the latest evaluation first and their accruals told (the history then
        holds what the counters show); the saves of every cycle leave them lazy (the state
        says which, and the next owner brings them up to date: `settle_lazy`)."""
        async with self._evaluating:
            if self.state.lazy:
                schedules = self._cache.segments if self._cache is not None else {}
                state, accruals = settle_lazy(self.state, schedules=schedules,
                                              ruleset=self.ruleset)  # fmt: skip
                await self._tell_accruals(accruals)
                self.state = state
            await self._save(whole=whole)

    async def checkpoint(self) -> None:
        """The save a transition triggers: what changed since the last save, the lazy agents
        left lazy (what the cycle benchmark times as the incremental save)."""
        async with self._evaluating:
            await self._save()

    async def _save(self, *, whole: bool = False) -> None:
        for hook in self._before_persist:
            await hook()
        if whole:
            self._store.forget(self.tenant)
        await self._store.save(self.tenant, self.state)
        self._persisted_at = self._clock.now()

    def seed_tracker(self) -> StateTracker:
        """A state tracker that starts from what the engine remembers, so that after a restart
        an agent still in the same state keeps its entry time instead of starting anew."""
        tracker = StateTracker(self.tenant)
        tracker.import_state(
            {
                "version": TRACKER_STATE_VERSION,
                "tenant": self.tenant,
                "agents": {
                    aid: {
                        "name": m.name,
                        "team": m.team,
                        "kind": m.state.kind.value,
                        "pause_type": m.state.pause_type,
                        "raw": m.state.raw,
                        "since": m.since.isoformat(),
                        "since_exact": False,
                    }
                    for aid, m in self.state.agents.items()
                },
                "teams": {},
            }
        )
        return tracker

    def last_evaluated(self) -> datetime | None:
        """Up to when the engine has settled its books (None before the first evaluation)."""
        return self.state.last_accounted()

    # --- EngineView ---------------------------------------------------------------------------

    def agent_evaluations(self, tenant: str) -> Sequence[AgentEvaluation]:
        return self.evaluations

    def accrued(self, tenant: str) -> Sequence[Accrual]:
        return self.state.totals()

    def totals_by_agent(self, tenant: str) -> Mapping[str, AgentMemory | CurrentTotals]:
        """The engine's memory of each agent, not copied: the exporter reads the totals within
        one synchronous render, so no cycle can change them under it. A lazy agent's is derived
        up to the latest evaluation (`EngineState.current`), once per evaluated state."""
        state = self.state
        if not state.lazy:
            return state.agents
        kept = self._current
        if kept is None or kept[0] is not state:
            kept = self._current = (state, state.current_totals())
        return kept[1]

    def engine_state(self, tenant: str) -> EngineState:
        """The engine's state, not copied: the exporter reads the counters from it within one
        synchronous render (lazy agents' totals derived there, see `totals_by_agent`)."""
        return self.state

    def open_alerts(self, tenant: str) -> Sequence[AlertTransition]:
        return list(self.open_transitions.values())

    def activities(self, tenant: str) -> Sequence[str]:
        return list(self.ruleset.activities)

    async def check_staleness(self, last_success: Mapping[str, datetime]) -> None:
        """Evaluate the stale_data rule against the pollers' last successful poll times."""
        async with self._evaluating:
            result = evaluate_staleness(
                self.state,
                tenant=self.tenant,
                now=self._clock.now(),
                last_success=last_success,
                ruleset=self.ruleset,
            )
            await self._commit(result.state, result.transitions)


class PipelineSet:
    """All tenants' pipelines behind one `SnapshotSink` and one `EngineView`.

    With `on_redis_error`, a Redis failure while handling a snapshot is reported there and not
    raised: the poll that brought the snapshot succeeded (Puzzel answered), and the engine's
    memory was not advanced, so the next cycle evaluates the same stretch again."""

    def __init__(
        self,
        pipelines: Sequence[TenantPipeline] = (),
        *,
        on_redis_error: Callable[[RedisError], None] | None = None,
        on_fenced: Callable[[str, FencedOut], None] | None = None,
        works: Callable[[str], bool] | None = None,
    ) -> None:
        self.by_tenant = {p.tenant: p for p in pipelines}
        # replicas: whether this one may still evaluate the tenant (its lease was renewed within
        # its TTL); after a pause longer than that it may not, until the lease is renewed
        self.works = works
        self.on_redis_error = on_redis_error
        # a write refused by the tenant's fencing token: another replica works it now
        self.on_fenced = on_fenced

    def _redis_failed(self, error: RedisError) -> None:
        if self.on_redis_error is None:
            raise error
        self.on_redis_error(error)

    def add(self, pipeline: TenantPipeline) -> None:
        self.by_tenant[pipeline.tenant] = pipeline

    def remove(self, tenant: str) -> TenantPipeline | None:
        return self.by_tenant.pop(tenant, None)

    def _fenced(self, tenant: str, error: FencedOut) -> None:
        if self.on_fenced is None:
            raise error
        self.on_fenced(tenant, error)

    async def start(self) -> None:
        for p in self.by_tenant.values():
            await p.start()

    async def persist(self, *, whole: bool = False) -> None:
        for p in self.by_tenant.values():
            await p.persist(whole=whole)

    def _pipeline(self, tenant: str) -> TenantPipeline | None:
        """None: the tenant was handed over meanwhile, or its lease may have run out."""
        if self.works is not None and not self.works(tenant):
            return None
        return self.by_tenant.get(tenant)

    async def on_agent_cycle(self, tenant: str, snapshots: Sequence[AgentSnapshot]) -> None:
        p = self._pipeline(tenant)
        try:
            if p is not None:
                await p.on_agent_cycle(tenant, snapshots)
        except RedisError as e:
            self._redis_failed(e)
        except FencedOut as e:
            self._fenced(tenant, e)

    async def on_queues(self, tenant: str, snapshot: QueueSnapshot) -> None:
        p = self._pipeline(tenant)
        try:
            if p is not None:
                await p.on_queues(tenant, snapshot)
        except RedisError as e:
            self._redis_failed(e)
        except FencedOut as e:
            self._fenced(tenant, e)

    async def on_ticker(self, tenant: str, snapshot: TickerSnapshot) -> None:
        p = self.by_tenant.get(tenant)
        if p is not None:
            await p.on_ticker(tenant, snapshot)

    def agent_evaluations(self, tenant: str) -> Sequence[AgentEvaluation]:
        p = self.by_tenant.get(tenant)
        return p.agent_evaluations(tenant) if p else []

    def accrued(self, tenant: str) -> Sequence[Accrual]:
        p = self.by_tenant.get(tenant)
        return p.accrued(tenant) if p else []

    def totals_by_agent(self, tenant: str) -> Mapping[str, AgentMemory | CurrentTotals]:
        p = self.by_tenant.get(tenant)
        return p.totals_by_agent(tenant) if p else {}

    def engine_state(self, tenant: str) -> EngineState:
        p = self.by_tenant.get(tenant)
        return p.engine_state(tenant) if p else EngineState()

    def open_alerts(self, tenant: str) -> Sequence[AlertTransition]:
        p = self.by_tenant.get(tenant)
        return p.open_alerts(tenant) if p else []

    def activities(self, tenant: str) -> Sequence[str]:
        p = self.by_tenant.get(tenant)
        return p.activities(tenant) if p else []
