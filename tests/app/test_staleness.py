"""stale_data through the assembled monitor: one alert per endpoint, none for an endpoint the
tenant does not have (virtual time, the simulator over real HTTP, real Redis)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis

from monitor.alerts.model import labels_for
from monitor.app.wiring import Monitor
from monitor.engine.model import AlertTransition
from monitor.rules.loader import ruleset_from_mapping
from tests.simserver import T0, SimServer, config_for


async def test_stale_data_per_endpoint_and_never_for_an_unsupported_one(
    make_sim_server: Callable[..., Any], redis_client: aioredis.Redis
) -> None:
    """agent_stats answers, then 404s (the tenant lacks it after all): no stale_data for it.
    The queues endpoint starts failing: stale_data fires for `queues` alone, with its label."""
    server: SimServer = await make_sim_server()
    config = config_for(
        server,
        cadences={"user_states": "5s", "queues": "15s", "agent_stats": "15s",
                  "queue_ticker": "off", "access_points": "off", "jitter": "off"},
    )  # fmt: skip
    seen: list[AlertTransition] = []

    async def record(transitions: Sequence[AlertTransition]) -> None:
        seen.extend(transitions)

    monitor = Monitor(
        config,
        clock=server.clock,
        redis=redis_client,
        ruleset=ruleset_from_mapping({"stale_data": {"after": "1m"}}, only_listed=True),
        observers=(record,),
        host="127.0.0.1",
        port=0,
        key_prefix="pzm-stale",
    )
    await monitor.start()
    try:
        scheduler = monitor.service.scheduler
        pollers = monitor.service.pollers[config.tenants[0].customer_key]
        await scheduler.run_until(T0 + timedelta(minutes=1))
        assert pollers.health["agent_stats"].last_success is not None
        server.missing.add("agentstats")
        await scheduler.run_until(T0 + timedelta(minutes=4))
        assert pollers.unsupported() == {"agent_stats"}
        assert not [t for t in seen if t.rule.value == "stale_data"]
        server.broken.add("visualqueues/stateinformation")
        await scheduler.run_until(T0 + timedelta(minutes=7))
    finally:
        await monitor.stop(grace=0)
    stale = [t for t in seen if t.rule.value == "stale_data"]
    assert [(t.status, t.subject_id) for t in stale] == [("firing", "queues")]
    assert labels_for(stale[0])["endpoint"] == "queues"
