"""Stopping (what SIGTERM does) while a slow receiver is answering, five times over: the request
in flight finishes within the grace period, no new batch starts once stopping began, and across
the five restarts every notification arrives exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr

from monitor.alerts.outbox import Dispatcher, Outbox
from monitor.alerts.sinks.webhook import WebhookSink
from monitor.core.clock import SystemClock
from tests.alerts.helpers import T0, alert
from tests.redis_server import free_port

SLOW = 0.6  # seconds the receiver takes to answer, after it has taken the message in
GRACE = 2.0
ROUNDS = 5
TEAMS = 4  # alerts per round, one team each: one message each


class SlowReceiver:
    """Takes every message in at once (as a real receiver would act on it), answers slowly."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, str], list[dict[str, Any]]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            (time.monotonic(), dict(request.headers), orjson.loads(body)["alerts"])
        )
        self.arrived.set()
        await asyncio.sleep(SLOW)
        return web.Response(text="ok")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app


async def test_stop_during_slow_delivery_five_times(redis_client: aioredis.Redis) -> None:
    clock = SystemClock()
    receiver = SlowReceiver()
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    outbox = Outbox(redis_client, sinks=["ops"], clock=clock)
    published: list[str] = []
    started_after_stop = 0

    def dispatcher(sink: WebhookSink) -> Dispatcher:
        return Dispatcher(
            outbox, {"ops": sink}, clock=clock, group_wait=timedelta(0), poll_interval=0.02
        )

    try:
        for round_ in range(ROUNDS):
            batch = [alert(f"{round_}{t}", team=f"team{t}", since=T0) for t in range(TEAMS)]
            await outbox.publish(batch)
            published += [a.labels["agent"] for a in batch]
            sink = WebhookSink(SecretStr(f"http://127.0.0.1:{port}/h"), clock=clock, timeout=10)
            d = dispatcher(sink)
            receiver.arrived.clear()
            await d.start()
            await asyncio.wait_for(receiver.arrived.wait(), 10)  # a request is in flight
            stopped_at = time.monotonic()
            await d.stop(grace=GRACE)
            await sink.close()
            started_after_stop += sum(1 for t, _, _ in receiver.received if t > stopped_at)
        sink = WebhookSink(SecretStr(f"http://127.0.0.1:{port}/h"), clock=clock, timeout=10)
        d = dispatcher(sink)
        await d.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while sum(len(items) for _, _, items in receiver.received) < len(published):
            assert loop.time() < deadline, "not everything was delivered"
            await asyncio.sleep(0.05)
        await asyncio.sleep(SLOW + 0.5)  # anything sent twice would arrive now
        await d.stop(grace=GRACE)
        await sink.close()
    finally:
        await runner.cleanup()

    got = Counter(
        str(item["labels"]["agent"]) for _, _, items in receiver.received for item in items
    )
    print(f"messages: {len(receiver.received)}, new after a stop began: {started_after_stop}")
    assert started_after_stop == 0
    assert set(got) == set(published)  # none lost
    assert max(got.values()) == 1  # none doubled
