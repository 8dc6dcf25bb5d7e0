"""Replicas sharing one outbox: only the holder of the delivery lease delivers; a new holder
continues from the old one's pending entries; an ex-holder whose token moved sends nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr

from monitor.alerts.config import AlertingConfig
from monitor.alerts.outbox import Dispatcher, Outbox
from monitor.alerts.service import AlertingService
from monitor.alerts.sinks.webhook import WebhookSink
from monitor.core.clock import SystemClock
from monitor.pipeline.leases import OUTBOX, Fence, FencedOut, LeaseStore
from tests.alerts.helpers import T0, Receiver, alert
from tests.redis_server import free_port

FAST = {"group_wait": timedelta(0), "poll_interval": 0.02, "retry_base": 0.05}


class Gate:
    def __init__(self) -> None:
        self.fence: Fence | None = None
        self.refused: list[FencedOut] = []

    def lost(self, error: FencedOut) -> None:
        self.refused.append(error)
        self.fence = None


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Receiver, int]]:
    receiver = Receiver()
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield receiver, port
    await runner.cleanup()


def dispatcher(redis: aioredis.Redis, port: int, name: str, gate: Gate) -> Dispatcher:
    clock = SystemClock()
    sink = WebhookSink(SecretStr(f"http://127.0.0.1:{port}/h"), clock=clock, receiver="ops")
    outbox = Outbox(redis, sinks=["ops"], clock=clock)
    return Dispatcher(outbox, {"ops": sink}, clock=clock, gate=gate, consumer=name, **FAST)


def keys(receiver: Receiver) -> Counter[str]:
    return Counter(a["idempotencyKey"] for p in receiver.accepted for a in p["alerts"])


async def until(check: object, limit: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_only_the_lease_holder_delivers_and_the_next_one_continues(
    redis_client: aioredis.Redis, hook: tuple[Receiver, int]
) -> None:
    receiver, port = hook
    leases = {
        n: LeaseStore(redis_client, replica=n, ttl=timedelta(seconds=30), clock=SystemClock())
        for n in "ab"
    }
    gates = {"a": Gate(), "b": Gate()}
    lease_a = await leases["a"].acquire(OUTBOX)
    assert lease_a is not None
    gates["a"].fence = lease_a.fence
    a, b = (dispatcher(redis_client, port, n, gates[n]) for n in "ab")
    await a.start()
    await b.start()
    try:
        publisher = a.outbox
        await publisher.publish([alert(x, since=T0) for x in ("1", "2", "3")])
        await until(lambda: len(keys(receiver)) == 3)
        # a stops delivering (it lost the lease: its token moved); b acquires and delivers
        gates["a"].fence = None
        await redis_client.delete(lease_a.key)
        lease_b = await leases["b"].acquire(OUTBOX)
        assert lease_b is not None
        gates["b"].fence = lease_b.fence
        await publisher.publish([alert(x, since=T0, status="resolved") for x in ("1", "2", "3")])
        await until(lambda: len(keys(receiver)) == 6)
        await asyncio.sleep(0.3)  # room for a duplicate to show up
    finally:
        await a.stop()
        await b.stop()
    assert set(keys(receiver).values()) == {1}
    consumers = await redis_client.xinfo_consumers("pzm:outbox", "ops")
    assert [c["name"] for c in consumers] == [b"b"]  # a's went with its last entries
    statuses = Counter(x["status"] for p in receiver.accepted for x in p["alerts"])
    assert statuses == {"firing": 3, "resolved": 3}


async def test_an_ex_holder_whose_token_moved_sends_nothing(
    redis_client: aioredis.Redis, hook: tuple[Receiver, int]
) -> None:
    receiver, port = hook
    store = LeaseStore(redis_client, replica="a", ttl=timedelta(seconds=30), clock=SystemClock())
    lease = await store.acquire(OUTBOX)
    assert lease is not None
    await redis_client.incr(lease.fence.key)  # another replica acquired it since
    gate = Gate()
    gate.fence = lease.fence  # ...but this one has not noticed yet (it was paused)
    a = dispatcher(redis_client, port, "a", gate)
    await a.start()
    try:
        await a.outbox.publish([alert("1", since=T0)])
        await until(lambda: bool(gate.refused))
        await asyncio.sleep(0.3)
    finally:
        await a.stop()
    assert receiver.requests == []
    assert gate.refused[0].current == lease.fence.token + 1
    # the entry stays in the stream for the holder to deliver
    assert (await a.outbox.backlog())["ops"].pending == 1


async def test_alertmanager_resends_come_only_from_the_deliverer(
    redis_client: aioredis.Redis,
) -> None:
    """The Alertmanager re-sender (which repeats open alerts every minute) skips its rounds on a
    replica that does not deliver, so Alertmanager is not told everything once per replica."""
    config = AlertingConfig.model_validate(
        {"sinks": {"am": {"type": "alertmanager", "url": "http://127.0.0.1:9/"}}}
    )
    gate = Gate()
    service = AlertingService(config, redis_client, clock=SystemClock(), gate=gate, consumer="a")
    store = LeaseStore(redis_client, replica="a", ttl=timedelta(seconds=30), clock=SystemClock())
    lease = await store.acquire(OUTBOX)
    assert lease is not None
    try:
        assert service.dispatcher.gate is gate
        assert service._backing_off("am")
        gate.fence = lease.fence
        assert not service._backing_off("am")
    finally:
        await service.stop(grace=0)


async def test_a_consumer_that_holds_entries_is_not_deleted(redis_client: aioredis.Redis) -> None:
    """Deleting a consumer orphans its pending entries: the clean-up checks, atomically."""
    outbox = Outbox(redis_client, sinks=["ops"], clock=SystemClock())
    await outbox.publish([alert("1", since=T0)])
    await redis_client.xreadgroup("ops", "x", {outbox.stream: ">"}, count=10)
    await redis_client.xreadgroup("ops", "y", {outbox.stream: ">"}, count=10)  # gets nothing
    for name in ("x", "y"):
        await outbox.delete_idle_consumer(keys=[outbox.stream], args=["ops", name])
    consumers = await redis_client.xinfo_consumers(outbox.stream, "ops")
    assert [(c["name"], c["pending"]) for c in consumers] == [(b"x", 1)]
