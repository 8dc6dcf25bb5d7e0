"""The running monitor (the one wiring) writes the records as it goes: after half an hour of a
simulated centre over real HTTP, the day's record of every agent holds exactly the seconds the
engine accrued (virtual time, real Redis); stopping flushes what was buffered. The visual
queue's closed interval is stored and streamed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from monitor.app.wiring import Monitor
from monitor.core.keys import RedisKeys
from monitor.history.queue_store import QueueIntervalRecorder
from monitor.history.report import ReportQuery, adherence_report
from monitor.rules.loader import ruleset_from_mapping
from monitor.simulator.centre import RandomCentre
from tests.simserver import T0, SimServer, config_for


async def test_the_running_monitor_keeps_the_engine_seconds(
    make_sim_server: Callable[..., Any], redis_client: aioredis.Redis
) -> None:
    server: SimServer = await make_sim_server(agents=20, groups=2, queues=1)
    config = config_for(server)
    tenant = config.tenants[0].customer_key
    centre = server.sim.centre
    assert isinstance(centre, RandomCentre)
    day = T0.astimezone(centre.timezone).date()
    monitor = Monitor(
        config,
        clock=server.clock,
        redis=redis_client,
        ruleset=ruleset_from_mapping({"out_of_adherence": {"after": "5m"}}, only_listed=True),
        host="127.0.0.1",
        port=0,
        key_prefix="pzm-live",
    )
    await monitor.schedules.replace(tenant, centre.timezone, centre.schedules_for(day))
    await monitor.start()
    try:
        await monitor.service.scheduler.run_until(T0 + timedelta(minutes=30))
    finally:
        await monitor.stop(grace=0)
    totals = {a.agent_id: a for a in monitor.pipelines.by_tenant[tenant].accrued(tenant)}
    report = await adherence_report(monitor.history, ReportQuery(tenant, day, day))
    rows = {r["agent"]: r for r in report["agents"]}
    accrued = {a for a, t in totals.items() if t.scheduled_seconds or t.productive_seconds}
    assert accrued
    assert set(rows) == accrued
    assert sum(r["scheduled_seconds"] for r in rows.values()) > 0
    for agent, row in rows.items():
        t = totals[agent]
        assert row["scheduled_seconds"] == pytest.approx(t.scheduled_seconds)
        assert row["adherent_seconds"] == pytest.approx(t.adherent_seconds)
        assert row["productive_seconds"] == pytest.approx(t.productive_seconds)
        assert row["productive_scheduled_seconds"] == pytest.approx(t.productive_scheduled_seconds)
    # the polls at 09:15 and 09:30 (UTC) closed the visual queue's first two intervals: one
    # sample per 15-second poll, and the same intervals in the tenant's stream
    queues = QueueIntervalRecorder(
        redis_client, tenant=tenant, tz=centre.timezone, key_prefix="pzm-live"
    )
    intervals = await queues.read_day(day)
    assert [(i["start"][11:16], i["samples"]) for i in intervals] == [("10:00", 60), ("10:15", 60)]
    stream = await redis_client.xrange(RedisKeys("pzm-live").queue_interval_stream(tenant))
    assert [json.loads(f[b"interval"])["start"] for _, f in stream] == [
        i["start"] for i in intervals
    ]
