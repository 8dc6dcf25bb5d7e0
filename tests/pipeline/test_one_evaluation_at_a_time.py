"""A tenant's evaluations never overlap: an agent cycle still waiting for its approvals (Redis)
and the staleness check of the same moment are applied one after the other, so neither commits
a state without the other's changes (a stale_data condition lost that way fired again)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from monitor.core.clock import VirtualClock
from monitor.core.snapshots import AgentObservation, AgentSnapshot
from monitor.core.states import AgentState, StateKind
from monitor.engine.approvals import ApprovedRange
from monitor.engine.model import AlertTransition
from monitor.pipeline.cycle import StaticSchedules, TenantPipeline
from monitor.pipeline.state_store import MemoryEngineStateStore
from monitor.rules.loader import ruleset_from_mapping

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT = "12345"


class SlowApprovals:
    """Approvals that answer only once `go` is set (a slow Redis)."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.go = asyncio.Event()

    async def version(self, tenant: str) -> int:
        self.asked.set()
        await self.go.wait()
        return 1

    async def ranges(self, tenant: str, since: datetime) -> dict[str, list[ApprovedRange]]:
        return {}


async def test_an_agent_cycle_and_the_staleness_check_do_not_undo_each_other() -> None:
    clock = VirtualClock(T0 + timedelta(minutes=5))
    fired: list[AlertTransition] = []

    async def record(transitions: object) -> None:
        fired.extend(t for t in transitions if t.status == "firing")  # type: ignore[attr-defined]

    approvals = SlowApprovals()
    pipeline = TenantPipeline(
        tenant=TENANT,
        ruleset=ruleset_from_mapping({"stale_data": {"after": "1m"}}, only_listed=True),
        schedules=StaticSchedules({}),
        approvals=approvals,
        state_store=MemoryEngineStateStore(),
        clock=clock,
        observers=[record],
    )
    agent = AgentObservation("1001", "Ada", "Support", AgentState(StateKind.AVAILABLE), T0)
    snapshot = AgentSnapshot(TENANT, "Support", clock.now(), (agent,))
    cycle = asyncio.create_task(pipeline.on_agent_cycle(TENANT, [snapshot]))
    await approvals.asked.wait()  # the cycle is waiting for the approvals
    stale = {"queues": T0}  # queues last answered 5 minutes ago
    check = asyncio.create_task(pipeline.check_staleness(stale))
    await asyncio.sleep(0.01)
    approvals.go.set()
    await asyncio.gather(cycle, check)
    assert [t.subject_id for t in fired] == ["queues"]
    assert "queues" in pipeline.state.stale  # the cycle did not commit over the check
    await pipeline.check_staleness(stale)  # still stale: no second firing
    assert [t.subject_id for t in fired] == ["queues"]
