"""The durable outbox: outages, crashes and Redis restarts lose nothing and double nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.alerts.metrics import AlertMetrics
from monitor.alerts.outbox import Dispatcher, Outbox, SinkBacklog
from monitor.alerts.sinks.console import ConsoleSink
from monitor.core.clock import SystemClock
from tests.alerts.helpers import T0, Receiver, alert
from tests.alerts.sink_kinds import SINK_KINDS, SinkKind
from tests.redis_server import RedisServer, free_port

FAST = {
    "group_wait": timedelta(0),
    "poll_interval": 0.02,
    "retry_base": 0.05,
    "retry_cap": 0.2,
    "claim_idle": timedelta(0),
}


async def wait_for(cond: object, limit: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not cond():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _deliver_the_rest(
    redis_server: RedisServer,
    receiver: Receiver,
    kind: SinkKind,
    port: int,
    *,
    clock: SystemClock,
    resolve_later: list[str],
) -> dict[str, SinkBacklog]:
    """A fresh client and dispatcher deliver what the stream kept, through another Redis
    restart, then the resolves of `resolve_later`. Returns the outbox backlog at the end."""
    client = aioredis.Redis.from_url(redis_server.url)
    sink = kind.make(port, clock, client)
    try:
        outbox = Outbox(client, sinks=["ops"], clock=clock)
        dispatcher = Dispatcher(outbox, {"ops": sink}, clock=clock, **FAST)
        receiver.mode = "ok"
        await dispatcher.start()
        await wait_for(lambda: len(kind.delivered(receiver)) >= 9)
        # a Redis restart while delivering the rest
        await asyncio.to_thread(redis_server.restart)
        await outbox.publish([alert(a, since=T0, status="resolved") for a in resolve_later])
        await wait_for(lambda: len(kind.delivered(receiver)) >= 12)
        await asyncio.sleep(0.3)  # room for any duplicate to show up
        await dispatcher.stop()
        return await outbox.backlog()
    finally:
        await sink.close()  # type: ignore[attr-defined]  # every HTTP sink has one
        await client.aclose()


@pytest.mark.parametrize("kind", SINK_KINDS, ids=lambda k: k.name)
async def test_outage_crash_and_redis_restart_lose_nothing_and_double_nothing(
    redis_client: aioredis.Redis, redis_server: RedisServer, kind: SinkKind
) -> None:
    """Through refused connections, 500s, 429s, a dispatcher kill and a Redis restart, every
    notification arrives exactly once, and each alert's firing before its resolve: for every
    HTTP sink (webhook, Slack, Slack DMs, Teams)."""
    clock = SystemClock()
    port = free_port()
    receiver = kind.receiver(clock)
    registry = CollectorRegistry()
    metrics = AlertMetrics(registry)

    agents = [str(1000 + i) for i in range(6)]
    await kind.prepare(redis_client, agents)
    outbox = Outbox(redis_client, sinks=["ops"], clock=clock)
    sink1 = kind.make(port, clock, redis_client)
    dispatcher = Dispatcher(outbox, {"ops": sink1}, clock=clock, metrics=metrics, **FAST)
    await dispatcher.start()

    await outbox.publish([alert(a, since=T0) for a in agents])  # nothing listens: refused
    await asyncio.sleep(0.3)
    assert receiver.requests == []
    assert (
        registry.get_sample_value("puzzelmon_notification_failures_total", {"sink": "ops"}) or 0
    ) > 0

    runner = web.AppRunner(receiver.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    receiver.mode = "500"
    await wait_for(lambda: len(receiver.requests) >= 2)
    # resolves are written while the firing batch is still failing
    await outbox.publish([alert(a, since=T0, status="resolved") for a in agents[:3]])
    receiver.mode = "429"
    await wait_for(lambda: any(True for _ in receiver.requests[3:]))

    # kill the dispatcher while the sink is down and drop the client
    await dispatcher.stop(grace=0)
    await sink1.close()  # type: ignore[attr-defined]
    await redis_client.aclose()
    assert kind.delivered(receiver) == []

    # Redis restarts (append-only, fsync always): the stream and pending lists survive
    await asyncio.to_thread(redis_server.restart)
    try:
        backlog = await _deliver_the_rest(
            redis_server, receiver, kind, port, clock=clock, resolve_later=agents[3:]
        )
    finally:
        await runner.cleanup()

    got = kind.delivered(receiver)
    assert len(got) == 12
    assert Counter(got).most_common(1)[0][1] == 1  # nothing twice
    by_agent: dict[str, list[str]] = {}
    for agent, status in got:
        by_agent.setdefault(agent, []).append(status)
    assert sorted(by_agent) == agents
    assert sorted(by_agent.values()) == [["firing", "resolved"]] * 6
    assert backlog["ops"].pending == 0


async def test_republished_transition_is_not_sent_twice(redis_client: aioredis.Redis) -> None:
    """Publishing the same firing alert twice (a re-emitted transition) notifies once."""
    clock = SystemClock()
    sink = RecordingSink()
    outbox = Outbox(redis_client, sinks=["c"], clock=clock)
    assert await outbox.publish([alert("1")]) == 1
    assert await outbox.publish([alert("1")]) == 0
    async with Dispatcher(outbox, {"c": sink}, clock=clock, **FAST):
        await wait_for(lambda: len(sink.sent) == 1)
        await asyncio.sleep(0.2)
    assert len(sink.sent) == 1


async def test_redelivered_entry_with_idempotency_record_is_not_resent(
    redis_client: aioredis.Redis,
) -> None:
    """An entry delivered but never acknowledged (crash) is acknowledged unsent on restart."""
    clock = SystemClock()
    outbox = Outbox(redis_client, sinks=["c"], clock=clock)
    await outbox.publish([alert("1")])
    await outbox.ensure_groups()
    # read it as the worker would, and record it as sent, but crash before XACK
    resp = await redis_client.xreadgroup("c", "main", {outbox.stream: ">"})
    from monitor.alerts.outbox import Notification

    n = Notification.from_json(resp[0][1][0][1][b"n"])
    await redis_client.set(outbox.sent_key("c", n), b"1")
    sink = RecordingSink()
    async with Dispatcher(outbox, {"c": sink}, clock=clock, **FAST):
        await wait_for(lambda: not sink.sent)
        await asyncio.sleep(0.3)
        backlog = await outbox.backlog()
    assert sink.sent == []
    assert backlog["c"].pending == 0


async def test_resolve_within_group_wait_is_never_sent(redis_client: aioredis.Redis) -> None:
    """An alert that fires and resolves within group_wait produces no notification at all."""
    clock = SystemClock()
    sink = RecordingSink()
    outbox = Outbox(redis_client, sinks=["c"], clock=clock)
    opts = {**FAST, "group_wait": timedelta(seconds=0.3)}
    async with Dispatcher(outbox, {"c": sink}, clock=clock, **opts):
        await outbox.publish([alert("1"), alert("2")])
        await outbox.publish([alert("1", status="resolved")])
        await wait_for(lambda: len(sink.sent) >= 1)
        await asyncio.sleep(0.4)
        backlog = await outbox.backlog()
    assert [(a.labels["agent"], a.status) for batch in sink.sent for a in batch] == [
        ("2", "firing")
    ]
    assert backlog["c"].pending == 0


async def test_group_wait_gathers_one_team_into_one_message(redis_client: aioredis.Redis) -> None:
    """Alerts published close together for one team go out as one batch; other teams separately."""
    clock = SystemClock()
    sink = RecordingSink()
    outbox = Outbox(redis_client, sinks=["c"], clock=clock)
    opts = {**FAST, "group_wait": timedelta(seconds=0.3)}
    async with Dispatcher(outbox, {"c": sink}, clock=clock, **opts):
        await outbox.publish([alert("1"), alert("2", team="Sales")])
        await asyncio.sleep(0.05)
        await outbox.publish([alert("3"), alert("4")])
        await wait_for(lambda: sum(len(b) for b in sink.sent) == 4)
    teams = sorted((b[0].team, len(b)) for b in sink.sent)
    assert teams == [("Sales", 1), ("Support", 3)]


@pytest.mark.parametrize("kind", SINK_KINDS, ids=lambda k: k.name)
async def test_permanent_error_drops_and_counts(
    redis_client: aioredis.Redis, kind: SinkKind
) -> None:
    """A 4xx answer is not retried: the notification is dropped and counted as a failure."""
    clock = SystemClock()
    receiver = Receiver(mode="400")
    runner = web.AppRunner(receiver.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    registry = CollectorRegistry()
    await kind.prepare(redis_client, ["1"])
    outbox = Outbox(redis_client, sinks=["ops"], clock=clock)
    sink = kind.make(port, clock, redis_client)
    try:
        async with Dispatcher(
            outbox, {"ops": sink}, clock=clock, metrics=AlertMetrics(registry), **FAST
        ):
            await outbox.publish([alert("1")])
            await wait_for(lambda: len(receiver.requests) == 1)
            await asyncio.sleep(0.3)
            backlog = await outbox.backlog()
    finally:
        await sink.close()  # type: ignore[attr-defined]
        await runner.cleanup()
    assert len(receiver.requests) == 1
    assert backlog["ops"].pending == 0
    assert registry.get_sample_value("puzzelmon_notification_failures_total", {"sink": "ops"}) == 1
    assert registry.get_sample_value("puzzelmon_notification_retries_total", {"sink": "ops"}) == 0


async def test_backlog_metrics_report_pending_and_age(redis_client: aioredis.Redis) -> None:
    """Undelivered entries show in puzzelmon_outbox_pending and oldest_age_seconds per sink."""
    from monitor.core.clock import VirtualClock

    clock = VirtualClock(T0)
    outbox = Outbox(redis_client, sinks=["a", "b"], clock=clock)
    await outbox.publish([alert("1"), alert("2")])
    clock.advance(42)
    registry = CollectorRegistry()
    metrics = AlertMetrics(registry)
    metrics.outbox.snapshot = await outbox.backlog()
    assert registry.get_sample_value("puzzelmon_outbox_pending", {"sink": "a"}) == 2
    assert registry.get_sample_value("puzzelmon_outbox_oldest_age_seconds", {"sink": "b"}) == 42


async def test_console_sink_prints_one_line_per_transition(redis_client: aioredis.Redis) -> None:
    """The console sink writes one line per notification with status, rule, subject, summary."""
    import io

    out = io.StringIO()
    clock = SystemClock()
    outbox = Outbox(redis_client, sinks=["console"], clock=clock)
    async with Dispatcher(outbox, {"console": ConsoleSink(out)}, clock=clock, **FAST):
        await outbox.publish([alert("1001")])
        await wait_for(lambda: out.getvalue().count("\n") == 1)
        await outbox.publish([alert("1001", status="resolved")])
        await wait_for(lambda: out.getvalue().count("\n") == 2)
    first, second = out.getvalue().splitlines()
    assert "firing" in first
    assert "break_overrun" in first
    assert "agent 1001" in first
    assert "Agent 1001" in first  # the summary
    assert "resolved" in second


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[list[object]] = []

    @property
    def max_batch(self) -> int:
        return 100

    async def send(self, batch, deliveries=()):  # type: ignore[no-untyped-def]
        self.sent.append(list(batch))


async def test_a_crashing_sink_is_dropped_not_fatal(redis_client: aioredis.Redis) -> None:
    """A sink that raises an unexpected error loses that batch (counted) but keeps delivering."""
    clock = SystemClock()
    registry = CollectorRegistry()
    sink = FlakySink()
    outbox = Outbox(redis_client, sinks=["c"], clock=clock)
    async with Dispatcher(outbox, {"c": sink}, clock=clock, metrics=AlertMetrics(registry), **FAST):
        await outbox.publish([alert("1")])
        await wait_for(lambda: sink.calls == 1)
        await outbox.publish([alert("2")])
        await wait_for(lambda: len(sink.sent) == 1)
    assert registry.get_sample_value("puzzelmon_notification_failures_total", {"sink": "c"}) == 1
    assert registry.get_sample_value("puzzelmon_notifications_total", {"sink": "c"}) == 1


class FlakySink(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def send(self, batch, deliveries=()):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("bug")
        self.sent.append(list(batch))
