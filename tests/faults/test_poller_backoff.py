"""A poller that failed for a long time backs off to at most two cadences, so it recovers within
two cadences of Puzzel coming back (it used to back off to 8 cadences: 480 s for a 60 s poller)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from monitor.app.service import make_client
from monitor.ingest.cadence import Scheduler
from monitor.ingest.pollers import LatestSnapshots, TenantPollers
from tests.simserver import T0, SimServers

CADENCE = 60.0
FAIL_FROM, FAIL_UNTIL = 30.0, 30.0 + 1200.0  # 20 minutes of 5xx


@pytest.fixture
async def servers() -> AsyncIterator[SimServers]:
    s = SimServers()
    yield s
    await s.close()


async def test_failed_poller_recovers_within_two_cadences(servers: SimServers) -> None:
    server = await servers.start(agents=10, groups=1, queues=1)
    tenant = server.tenant(
        cadences={"user_states": "60s", "queues": "off", "agent_stats": "off",
                  "queue_ticker": "off", "access_points": "off", "jitter": "off"},
    )  # fmt: skip
    scheduler = Scheduler(server.clock)
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, LatestSnapshots())
        pollers.register(scheduler)
        await scheduler.run_until(T0 + timedelta(seconds=FAIL_FROM))
        server.sim.faults.error_rate = 1.0
        await scheduler.run_until(T0 + timedelta(seconds=FAIL_UNTIL))
        health = pollers.health["user_states"]
        assert not health.up
        assert health.failures >= 10
        server.sim.faults.clear()
        # a failing poll moves the virtual clock itself (the client's retries sleep on it)
        cleared_at = server.clock.now()
        await scheduler.run_until(cleared_at + timedelta(seconds=2 * CADENCE))

    assert health.up
    assert health.last_success is not None
    recovered_after = (health.last_success - cleared_at).total_seconds()
    print(f"up again {recovered_after:.0f} s after Puzzel came back")
    assert 0 <= recovered_after <= 2 * CADENCE
    polls = sorted(
        {r.monotonic for r in server.sim.requests if r.endpoint == "user_group_state_information"}
    )
    gaps = [b - a for a, b in itertools.pairwise(polls) if FAIL_FROM <= a < FAIL_UNTIL]
    assert max(gaps) <= 2 * CADENCE
