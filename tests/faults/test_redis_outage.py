"""A 30 s Redis outage with persistence (append-only, fsync always) in the middle of an
incident: nothing is lost and nothing is doubled, including the alert that fired and resolved
while Redis was down (its firing and resolve are published in one cycle afterwards and must
not cancel each other out), and the outage is reported as Redis trouble, not Puzzel trouble."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta

import pytest

from tests.faults.harness import Break, start_rig, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (make test installs it when run as root)",
)

OUTAGE = 30.0
DOWN_AT = 6.0  # seconds after the start, once the first firings are out
UP_AT = DOWN_AT + OUTAGE
BREAKS = [
    Break("1001", ends=3, back=UP_AT + 6),  # fires before, resolves after
    Break("1002", ends=3, back=DOWN_AT + 8),  # fires before, resolves during the outage
    Break("1003", ends=DOWN_AT + 2, back=DOWN_AT + 12),  # fires and resolves during it
    Break("1004", ends=DOWN_AT + 4, back=UP_AT + 6),  # fires during, resolves after
]


async def test_redis_outage_with_persistence_loses_and_doubles_nothing() -> None:
    server = RedisServer(persist=True)
    await asyncio.to_thread(server.start)
    rig = await start_rig(BREAKS, server.url, group_wait=timedelta(seconds=2))
    try:
        await wait_for(
            "the first firings", lambda: all(rig.count(a, "firing") for a in ("1001", "1002"))
        )
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(OUTAGE / 2)
        assert await rig.metric("puzzelmon_redis_up") == 0
        assert await rig.metric("puzzelmon_up", {"tenant": "12345", "endpoint": "user_states"}) == 1
        await asyncio.sleep(OUTAGE / 2)
        await asyncio.to_thread(server.start)  # the append-only file brings everything back
        await wait_for(
            "every resolve",
            lambda: all(rig.count(b.agent, "resolved") for b in BREAKS),
            max(b.back for b in BREAKS) - DOWN_AT + 20,
        )
        await asyncio.sleep(1.5)  # anything sent twice would arrive now
        assert await rig.metric("puzzelmon_redis_up") == 1
        assert await rig.metric("puzzelmon_redis_data_losses_total") == 0
        failures = await rig.metric(
            "puzzelmon_poll_failures_total", {"tenant": "12345", "endpoint": "user_states"}
        )
    finally:
        await rig.close()
        await asyncio.to_thread(server.cleanup)

    delivered = rig.delivered()
    print(f"requests: {len(rig.receiver.requests)}; delivered: {sorted(delivered.items())}")
    for b in BREAKS:
        assert rig.count(b.agent, "firing") == 1, b
        assert rig.count(b.agent, "resolved") == 1, b
    assert not [k for k in delivered if k[2] == "redelivery"]
    assert failures == 0  # Puzzel answered all along
    assert len(rig.receiver.requests) <= 10
