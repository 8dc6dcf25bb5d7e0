"""Redis killed and restarted *empty* in the middle of an incident, with the assembled monitor
polling the simulator over HTTP and delivering to a loopback receiver: delivery resumes without
a restart of the monitor, every open alert is re-announced (same idempotency key, marked as a
redelivery), every resolve arrives exactly once, the loss is alerted and /readyz fails until the
schedules are imported again."""

from __future__ import annotations

import asyncio
import shutil
import time

import orjson
import pytest

from monitor.app.redis_guard import DATA_LOST
from tests.faults.harness import Break, import_schedules, start_rig, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (make test installs it when run as root)",
)

OPEN_BEFORE = ["1001", "1002"]  # firing before Redis goes
FIRES_AROUND = "1003"  # fires while Redis is down or just after
BACK = 24.0  # every agent is back (all alerts resolve) this many seconds after the start


@pytest.mark.parametrize("replicas", [False, True], ids=["one process", "replicas on"])
async def test_redis_restarted_empty_mid_incident(replicas: bool) -> None:
    """With replicas on, the leases and fencing tokens went with the data too: the replica
    claims its own back (a token no other replica can have) before the recovery saves."""
    server = RedisServer(persist=False)
    await asyncio.to_thread(server.start)
    breaks = [Break(a, ends=3, back=BACK) for a in OPEN_BEFORE]
    breaks.append(Break(FIRES_AROUND, ends=9, back=BACK))
    rig = await start_rig(breaks, server.url, replicas=replicas)
    try:
        await wait_for(
            "the first firings", lambda: all(rig.count(a, "firing") for a in OPEN_BEFORE)
        )
        first_keys = {
            item["labels"]["agent"]: item["idempotencyKey"]
            for _, item in rig.items()
            if item["status"] == "firing"
        }
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(3)
        assert await rig.metric("puzzelmon_redis_up") == 0
        assert await rig.metric("puzzelmon_up", {"tenant": "12345", "endpoint": "user_states"}) == 1
        status, _ = await rig.get("/readyz")
        assert status == 503  # Redis does not answer
        await asyncio.to_thread(server.start)  # empty: no persistence
        back_at = time.monotonic()

        def reannounced() -> bool:
            return all(
                rig.delivered()[(a, "firing", "redelivery")] == 1 for a in OPEN_BEFORE
            ) and bool(rig.count(DATA_LOST, "firing"))

        took = await wait_for("the re-announcements and the loss alert", reannounced, 30)
        print(f"re-announced {took:.1f} s after Redis came back")
        status, body = await rig.get("/readyz")
        assert status == 503
        assert "12345" in orjson.loads(body)["problems"]
        assert await rig.metric("puzzelmon_redis_data_losses_total") == 1

        every = [*OPEN_BEFORE, FIRES_AROUND]
        await wait_for(
            "every resolve",
            lambda: all(rig.count(a, "resolved") for a in every),
            BACK + 20 - (time.monotonic() - back_at),
        )
        await import_schedules(rig.monitor, rig.scenario)
        for _ in range(30):
            status, _ = await rig.get("/readyz")
            if status == 200:
                break
            await asyncio.sleep(0.2)
        assert status == 200
        await asyncio.sleep(1.5)  # anything sent twice would arrive now
    finally:
        await rig.close()
        await asyncio.to_thread(server.cleanup)

    delivered = rig.delivered()
    print(f"requests: {len(rig.receiver.requests)}; delivered: {sorted(delivered.items())}")
    for agent in every:
        assert rig.count(agent, "resolved") == 1, agent
        assert delivered[(agent, "firing", "first")] == 1, agent
    for agent in OPEN_BEFORE:
        assert delivered[(agent, "firing", "redelivery")] == 1, agent
    # the re-announcement is the same notification as the first send: same key
    for headers, item in rig.items():
        if item["status"] == "firing" and item["delivery"] == "redelivery":
            assert item["idempotencyKey"] == first_keys[item["labels"]["agent"]]
            assert headers["X-Puzzel-Monitor-Delivery"] == "redelivery"
    assert rig.count(DATA_LOST, "firing") == 1
    # no retry storm: one request per notification, give or take a few
    assert len(rig.receiver.requests) <= 15
