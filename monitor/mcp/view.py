"""What the MCP tools read: the monitor's live state, one tenant at a time.

In `run` it is the running pipelines, pollers and latest snapshots. A stand-alone `mcp` process
(stdio) reads the engine's memory from Redis instead (as `run` last saved it, at most
`persist_interval` old) and has no pollers: it says so rather than guessing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from monitor.alerts.snooze import SnoozeStore
from monitor.alerts.store import AlertStore
from monitor.core.clock import Clock
from monitor.core.snapshots import QueueSnapshot
from monitor.engine.engine import EngineState
from monitor.history.store import HistoryStore
from monitor.ingest.pollers import LatestSnapshots, TenantPollers
from monitor.pipeline.cycle import PipelineSet
from monitor.pipeline.state_store import EngineStateStore
from monitor.schedules.store import ScheduleStore


def _no_pollers() -> TenantPollers | None:
    return None


@dataclass(frozen=True, slots=True)
class TenantView:
    engine_state: Callable[[], Awaitable[EngineState]]
    # read per call: the service creates its pollers only when it starts
    pollers: Callable[[], TenantPollers | None] = _no_pollers
    latest: LatestSnapshots | None = None

    def queues(self, tenant: str) -> QueueSnapshot | None:
        return self.latest.queues.get(tenant) if self.latest is not None else None


@dataclass(frozen=True, slots=True)
class MonitorView:
    tenants: Mapping[str, TenantView]
    alerts: AlertStore
    snoozes: SnoozeStore
    schedules: ScheduleStore
    clock: Clock
    # the adherence history, for approvals (None: the approve tools say it is not available)
    history: HistoryStore | None = None


def live_tenants(
    pipelines: PipelineSet,
    pollers: Mapping[str, TenantPollers],
    latest: LatestSnapshots | None,
) -> dict[str, TenantView]:
    """The running monitor's tenants."""

    def view(tenant: str) -> TenantView:
        pipeline = pipelines.by_tenant[tenant]

        async def state() -> EngineState:
            return pipeline.state

        return TenantView(state, lambda: pollers.get(tenant), latest)

    return {tenant: view(tenant) for tenant in pipelines.by_tenant}


def stored_tenants(store: EngineStateStore, tenants: list[str]) -> dict[str, TenantView]:
    """Tenants read from the engine's saved memory (stand-alone `mcp`)."""

    def view(tenant: str) -> TenantView:
        async def state() -> EngineState:
            saved = await store.load(tenant)
            return saved if saved is not None else EngineState(tenant)

        return TenantView(state)

    return {tenant: view(tenant) for tenant in tenants}
