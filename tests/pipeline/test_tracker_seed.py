"""After a restart, an agent still in the same state keeps the entry time the engine remembers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.core.clock import VirtualClock
from monitor.core.snapshots import AgentObservation, AgentSnapshot
from monitor.core.states import AgentState, StateKind
from monitor.engine.model import Segment
from monitor.ingest.tracker import AgentRow, GroupPoll
from monitor.pipeline.cycle import StaticSchedules, TenantPipeline
from monitor.pipeline.state_store import MemoryEngineStateStore
from monitor.rules.loader import default_ruleset

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAUSE = AgentState(StateKind.PAUSE, "Break")


def _pipeline(store: MemoryEngineStateStore, clock: VirtualClock) -> TenantPipeline:
    seg = Segment(T0 - timedelta(hours=1), T0 + timedelta(hours=4), "7", "phone")
    return TenantPipeline(
        tenant="1",
        ruleset=default_ruleset(),
        schedules=StaticSchedules({"1": {"7": [seg]}}),
        state_store=store,
        clock=clock,
    )


async def test_seeded_tracker_keeps_the_remembered_entry_time() -> None:
    """A restarted monitor's tracker reports the pre-restart `since` for an unchanged state."""
    store = MemoryEngineStateStore()
    clock = VirtualClock(T0)
    before = _pipeline(store, clock)
    await before.start()
    since = T0 - timedelta(minutes=3)
    obs = AgentObservation("7", "Ada", "Support", PAUSE, since, since_exact=True)
    await before.on_agent_cycle("1", [AgentSnapshot("1", "Support", T0, (obs,))])
    await before.persist()

    clock.advance(600)  # the monitor was down for ten minutes
    after = _pipeline(store, clock)
    await after.start()
    tracker = after.seed_tracker()
    result = tracker.observe_cycle(
        [GroupPoll("Support", clock.now(), [AgentRow("7", "Ada", "Support", PAUSE)])]
    )
    (seen,) = result.snapshots[0].agents
    assert seen.since == since
    assert result.changed == ()


async def test_seeded_tracker_notices_a_change_during_the_downtime() -> None:
    """A state that changed while the monitor was down starts at the first poll after it."""
    store = MemoryEngineStateStore()
    clock = VirtualClock(T0)
    before = _pipeline(store, clock)
    await before.start()
    obs = AgentObservation("7", "Ada", "Support", PAUSE, T0, since_exact=True)
    await before.on_agent_cycle("1", [AgentSnapshot("1", "Support", T0, (obs,))])
    clock.advance(600)
    after = _pipeline(store, clock)
    await after.start()
    tracker = after.seed_tracker()
    available = AgentState(StateKind.AVAILABLE)
    result = tracker.observe_cycle(
        [GroupPoll("Support", clock.now(), [AgentRow("7", "Ada", "Support", available)])]
    )
    assert result.changed == ("7",)
    assert result.snapshots[0].agents[0].since == clock.now()
