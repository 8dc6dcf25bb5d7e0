"""Quiet hours at delivery time, driven step by step on a virtual clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from monitor.alerts.config import AlertingConfig
from monitor.alerts.model import Alert
from monitor.alerts.outbox import Outbox, SinkWorker
from monitor.alerts.routing import Router
from monitor.alerts.sinks.base import Delivery
from monitor.core.clock import VirtualClock
from tests.alerts.helpers import alert

OSLO = ZoneInfo("Europe/Oslo")
NIGHT = datetime(2026, 3, 2, 23, 0, tzinfo=OSLO)
MORNING = datetime(2026, 3, 3, 7, 0, tzinfo=OSLO)


class ClockedSink:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sent: list[tuple[datetime, list[str]]] = []

    @property
    def max_batch(self) -> int:
        return 100

    async def send(self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()) -> None:
        self.sent.append((self.clock.now(), [a.status for a in batch]))


def setup(redis: aioredis.Redis) -> tuple[VirtualClock, Outbox, SinkWorker, ClockedSink]:
    cfg = AlertingConfig.model_validate(
        {"quiet_hours": [{"start": "22:00", "end": "07:00", "timezone": "Europe/Oslo"}]}
    )
    clock = VirtualClock(NIGHT)
    outbox = Outbox(redis, sinks=["console"], clock=clock, router=Router.from_config(cfg))
    sink = ClockedSink(clock)
    worker = SinkWorker(
        outbox, "console", sink, clock=clock, group_wait=timedelta(seconds=2), poll_interval=1800
    )
    return clock, outbox, worker, sink


async def test_notification_held_until_quiet_hours_end(redis_client: aioredis.Redis) -> None:
    """A firing at 23:00 inside 22:00–07:00 is delivered at 07:00 (plus group_wait), not before."""
    clock, outbox, worker, sink = setup(redis_client)
    await outbox.publish([alert("1", since=NIGHT - timedelta(minutes=20))])
    while clock.now() < MORNING + timedelta(minutes=5) and not sink.sent:
        await worker.step()
    assert len(sink.sent) == 1
    at, statuses = sink.sent[0]
    assert statuses == ["firing"]
    assert MORNING <= at <= MORNING + timedelta(seconds=5)


async def test_fired_and_resolved_within_quiet_hours_is_dropped(
    redis_client: aioredis.Redis,
) -> None:
    """An alert that fires and resolves during quiet hours is never sent, and leaves no backlog."""
    clock, outbox, worker, sink = setup(redis_client)
    since = NIGHT - timedelta(minutes=20)
    await outbox.publish([alert("1", since=since)])
    await worker.step()
    clock.set(NIGHT + timedelta(hours=2))
    await outbox.publish([alert("1", since=since, status="resolved")])
    while clock.now() < MORNING + timedelta(minutes=5):
        await worker.step()
    assert sink.sent == []
    assert (await outbox.backlog())["console"].pending == 0
