"""A monitor's state for the MCP tests: tests/mcp/scenario.yaml replayed up to 10:08 Oslo, on
the private redis-server; the tools read it through a `MonitorView` as in `run`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from monitor.alerts.snooze import SnoozeStore
from monitor.alerts.store import AlertStore
from monitor.core.clock import VirtualClock
from monitor.history.store import HistoryStore
from monitor.mcp.audit import AuditLog
from monitor.mcp.tokens import TokenStore
from monitor.mcp.tools import Tools
from monitor.mcp.view import MonitorView, TenantView
from monitor.pipeline.cycle import TenantPipeline
from monitor.schedules.store import ScheduleStore
from monitor.simulator.replay import run_replay
from monitor.simulator.scenario import load_scenario

SCENARIO = Path(__file__).with_name("scenario.yaml")
AT = datetime(2026, 3, 2, 9, 8, tzinfo=UTC)  # 10:08 Oslo
PREFIX = "pzm-replay"  # run_replay's keys: the tools read the same Redis the replay wrote
TENANT = "12345"


@dataclass
class Monitored:
    view: MonitorView
    tools: Tools
    tokens: TokenStore
    audit: AuditLog
    clock: VirtualClock
    pipeline: TenantPipeline


@pytest.fixture
async def monitored(redis_client: aioredis.Redis) -> AsyncIterator[Monitored]:
    result = await run_replay(
        load_scenario(SCENARIO), redis=redis_client, key_prefix=PREFIX, stop_at=AT
    )
    assert result.pipeline is not None
    assert result.pollers is not None
    clock = VirtualClock(AT)
    pipeline, pollers = result.pipeline, result.pollers

    async def state():  # type: ignore[no-untyped-def]
        return pipeline.state

    view = MonitorView(
        tenants={TENANT: TenantView(state, lambda: pollers, result.latest)},
        alerts=AlertStore(redis_client, key_prefix=PREFIX),
        snoozes=SnoozeStore(redis_client, clock=clock, key_prefix=PREFIX),
        schedules=ScheduleStore(redis_client, key_prefix=PREFIX),
        clock=clock,
        # the replay writes its history (and reads approvals) under run_replay's history prefix
        history=HistoryStore(redis_client, tenants={TENANT: ZoneInfo("Europe/Oslo")}, clock=clock),
    )
    return Monitored(
        view,
        Tools(view),
        TokenStore(redis_client, clock=clock, key_prefix=PREFIX),
        AuditLog(redis_client, clock=clock, key_prefix=PREFIX),
        clock,
        pipeline,
    )
