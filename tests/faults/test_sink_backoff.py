"""A failing sink is backed off per sink, whatever is published meanwhile: a receiver answering
500 and then 429 with Retry-After gets the few requests the backoff schedule allows (not
thousands), and afterwards every notification arrives exactly once, each with a stable
idempotency key."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from monitor.alerts.metrics import AlertMetrics
from monitor.alerts.outbox import Dispatcher, Outbox
from monitor.alerts.sinks.webhook import WebhookSink
from monitor.core.clock import SystemClock
from tests.alerts.helpers import T0, Receiver, alert
from tests.redis_server import free_port

BASE, CAP = 0.5, 2.0  # the sink's backoff: 0.5 s doubling up to 2 s, jittered down by <= 20 %
RETRY_AFTER = 3  # seconds, as the receiver says in its 429s
FAIL_500, FAIL_429 = 6.0, 9.0  # seconds of each failure mode


def allowed_for_500(seconds: float) -> int:
    """The most attempts the backoff schedule allows within `seconds` (shortest jitter)."""
    attempts, elapsed = 1, 0.0
    while True:
        elapsed += 0.8 * min(CAP, BASE * 2 ** (attempts - 1))
        if elapsed > seconds:
            return attempts
        attempts += 1


def allowed_for_429(seconds: float) -> int:
    return int(seconds // RETRY_AFTER) + 1


async def wait_for(cond: object, limit: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not cond():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _keep_firing(outbox: Outbox, published: list[str], seconds: float) -> None:
    """A new alert every 50 ms for `seconds`: each publish nudges the worker."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        agent = str(5000 + len(published))
        await outbox.publish([alert(agent, since=T0)])
        published.append(agent)
        await asyncio.sleep(0.05)


def _dispatcher(
    outbox: Outbox, sink: WebhookSink, registry: CollectorRegistry, clock: SystemClock
) -> Dispatcher:
    """One sink, no grouping delay, fast polling, the test's short backoff."""
    return Dispatcher(
        outbox,
        {"ops": sink},
        clock=clock,
        metrics=AlertMetrics(registry),
        group_wait=timedelta(0),
        poll_interval=0.02,
        retry_base=BASE,
        retry_cap=CAP,
    )


def _idempotency(
    requests: Sequence[tuple[Any, bytes, Mapping[str, str]]],
) -> tuple[dict[str, set[str]], dict[str, list[str]], dict[tuple[str, ...], set[str]]]:
    """Per agent: the idempotency keys and delivery kinds its items carried, in order; per
    batch of agents: the message keys (Idempotency-Key header) it was sent with."""
    keys: dict[str, set[str]] = defaultdict(set)
    kinds: dict[str, list[str]] = defaultdict(list)
    message_keys: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for _, body, headers in requests:
        items = orjson.loads(body)["alerts"]
        for item in items:
            keys[item["labels"]["agent"]].add(item["idempotencyKey"])
            kinds[item["labels"]["agent"]].append(item["delivery"])
        batch = tuple(sorted(i["labels"]["agent"] for i in items))
        message_keys[batch].add(headers["Idempotency-Key"])
    return keys, kinds, message_keys


async def test_failing_sink_backs_off_then_delivers_everything_once(
    redis_client: aioredis.Redis,
) -> None:
    clock = SystemClock()
    port = free_port()
    receiver = Receiver(mode="500", retry_after=str(RETRY_AFTER))
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    registry = CollectorRegistry()
    sink = WebhookSink(SecretStr(f"http://127.0.0.1:{port}/hook"), clock=clock, receiver="ops")
    outbox = Outbox(redis_client, sinks=["ops"], clock=clock)
    dispatcher = _dispatcher(outbox, sink, registry, clock)
    published: list[str] = []

    await dispatcher.start()
    try:
        await _keep_firing(outbox, published, FAIL_500)
        during_500 = len(receiver.requests)
        state = registry.get_sample_value("puzzelmon_sink_breaker_state", {"sink": "ops"})
        receiver.mode = "429"
        await _keep_firing(outbox, published, FAIL_429)
        during_429 = len(receiver.requests) - during_500
        receiver.mode = "ok"
        await wait_for(lambda: sum(len(p["alerts"]) for p in receiver.accepted) >= len(published))
        await asyncio.sleep(0.5)  # anything sent twice would arrive now
    finally:
        await dispatcher.stop(grace=1)
        await sink.close()
        await runner.cleanup()

    print(f"requests: {during_500} while 500, {during_429} while 429; published {len(published)}")
    assert 2 <= during_500 <= allowed_for_500(FAIL_500)
    assert 1 <= during_429 <= allowed_for_429(FAIL_429) + 1  # +1: the attempt at the switch
    assert state in (1.0, 2.0)  # failing while the receiver failed
    assert registry.get_sample_value("puzzelmon_sink_breaker_state", {"sink": "ops"}) == 0

    sent = Counter(a["labels"]["agent"] for p in receiver.accepted for a in p["alerts"])
    assert set(sent) == set(published)
    assert max(sent.values()) == 1

    # every attempt at one notification carries the same key; the first says `first`,
    # later ones `redelivery`, and the message key is stable for the same batch
    keys, kinds, message_keys = _idempotency(receiver.requests)
    assert all(len(k) == 1 for k in keys.values())
    assert len({next(iter(k)) for k in keys.values()}) == len(published)
    first = published[0]
    assert kinds[first][0] == "first"
    assert len(kinds[first]) >= 3
    assert set(kinds[first][1:]) == {"redelivery"}
    assert all(len(k) == 1 for k in message_keys.values())
