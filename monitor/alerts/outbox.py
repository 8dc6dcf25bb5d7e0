"""The durable outbox: every notification is written to a Redis stream before anyone tries to
deliver it, and each sink reads that stream through its own consumer group.

Guarantees (per sink):
- nothing is lost: an entry is acknowledged (XACK) only after the sink accepted it, or after it
  was dropped on purpose (permanent error, older than `max_age`, muted, resolve of an alert the
  sink never heard of). A consumer that dies leaves its entries pending; on restart it reads its
  own pending list first (XREADGROUP id 0) and claims other consumers' idle ones (XAUTOCLAIM).
- nothing reaches a person twice: after a successful send, an idempotency record
  (`sent:{sink}:{fingerprint}:{status}:{startsAt}:{tag}`, SET NX with a TTL) is written in the
  same transaction as the XACK; redelivered entries whose record exists are acknowledged unsent.
  The one gap is a crash between the receiver accepting a message and that transaction (or a
  timeout after the receiver accepted it), which can repeat that one message.
- order per alert: a sink delivers its stream in order and retries the head batch (backoff, or
  the receiver's Retry-After) until it succeeds, fails permanently or is older than `max_age`;
  nothing behind it overtakes it.
- one backoff per sink: once a send failed, the sink's next attempt waits out the backoff (or
  Retry-After) whatever is published meanwhile; new notifications queue behind it.
- receivers can dedupe: every notification carries a stable idempotency key (equal for every
  attempt at the same notification) and says whether it is a first send, a repeat or a
  redelivery (see `monitor.alerts.sinks.base.Delivery`).
- a Redis that lost its data: consumer groups are recreated when missing, the worker re-queues
  what it held in memory, and it remembers (in memory) what it sent, so that resolves of alerts it
  announced still go out and nothing it sent is sent again as a first send.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError, WatchError

from monitor.alerts.metrics import AlertMetrics, SinkBacklog
from monitor.alerts.model import Alert, alert_from_transition, parse_rfc3339, rfc3339
from monitor.alerts.routing import Router, escalation_due, repeat_due
from monitor.alerts.sinks.base import Delivery, DeliveryKind, Sink, SinkError
from monitor.alerts.snooze import SnoozeStore
from monitor.alerts.store import AlertRecord, AlertStore
from monitor.core.clock import Clock
from monitor.core.keys import RedisKeys
from monitor.engine.model import AlertTransition
from monitor.pipeline.leases import Fence, FencedOut

log = structlog.get_logger(__name__)

FIRST = "first"


class DeliveryGate(Protocol):
    """Whether this process delivers the outbox now (several replicas share one outbox; one
    delivers at a time, under a lease). `fence` is None while another replica delivers."""

    @property
    def fence(self) -> Fence | None: ...

    def lost(self, error: FencedOut) -> None:
        """A write was refused: another replica delivers now."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell some sinks about one alert.

    `tag` tells the notifications of one episode apart: `first`, `repeat:N`, `escalation:NAME`.
    `targets` maps each sink to the time its delivery is held until (quiet hours) or None.
    `fired_at` is when a firing should have fired (the engine's ideal time), which may be long
    before `enqueued_at` when Redis was down. `redelivery` marks a notification written again
    after Redis lost its data (it may have arrived before).
    """

    alert: Alert
    tag: str
    targets: Mapping[str, datetime | None]
    enqueued_at: datetime
    fired_at: datetime | None = None
    redelivery: bool = False

    @property
    def idempotency_part(self) -> str:
        a = self.alert
        return f"{a.fingerprint}:{a.status}:{rfc3339(a.starts_at)}:{self.tag}"

    @property
    def idempotency_key(self) -> str:
        """What receivers dedupe on: equal for every attempt at this notification."""
        return hashlib.sha256(self.idempotency_part.encode()).hexdigest()[:32]

    def to_json(self) -> bytes:
        data: dict[str, Any] = {
            "alert": self.alert.to_dict(),
            "tag": self.tag,
            "targets": {k: rfc3339(v) if v else None for k, v in self.targets.items()},
            "enqueued_at": rfc3339(self.enqueued_at),
        }
        if self.fired_at is not None:
            data["fired_at"] = rfc3339(self.fired_at)
        if self.redelivery:
            data["redelivery"] = True
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Notification:
        data = orjson.loads(raw)
        fired = data.get("fired_at")
        return cls(
            alert=Alert.from_dict(data["alert"]),
            tag=data["tag"],
            targets={k: parse_rfc3339(v) if v else None for k, v in data["targets"].items()},
            enqueued_at=parse_rfc3339(data["enqueued_at"]),
            fired_at=parse_rfc3339(fired) if fired else None,
            redelivery=bool(data.get("redelivery", False)),
        )

    def only_for(self, sink: str) -> Notification:
        """The same notification addressed to `sink` alone (re-queued by that sink's worker)."""
        return replace(self, targets={sink: self.targets.get(sink)})


def plan_publish(
    existing: AlertRecord | None,
    alert: Alert,
    now: datetime,
    router: Router,
    fired_at: datetime | None = None,
) -> tuple[AlertRecord, Notification] | None:
    """The new record and notification for a published alert, or None if it is a repeat of
    what was already published (a transition re-emitted after a crash)."""
    if alert.status == "firing":
        if (
            existing is not None
            and existing.alert.status == "firing"
            and existing.alert.starts_at == alert.starts_at
        ):
            return None
        record = AlertRecord(alert, now, last_sent={r.name: now for r in router.match(alert)})
        targets = router.targets(alert, now)
        return record, Notification(alert, FIRST, targets, now, fired_at=fired_at)
    assert alert.ends_at is not None
    escalated: tuple[str, ...] = ()
    if existing is not None:
        if existing.alert.status == "firing":
            # the resolve belongs to the episode that is open, whatever start the engine computed
            alert = Alert(
                alert.labels,
                alert.annotations,
                existing.alert.starts_at,
                alert.ends_at,
                alert.generator_url,
            )
            escalated = existing.escalated
        elif existing.alert.starts_at == alert.starts_at:
            return None
    record = AlertRecord(alert, now, escalated=escalated)
    targets = router.targets(alert, now, include_escalations=True)
    return record, Notification(alert, FIRST, targets, now)


# KEYS: stream. ARGV: group, consumer. Deletes the consumer only if it holds no entry.
_DELETE_IDLE_CONSUMER = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


class Outbox:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        sinks: Sequence[str],
        clock: Clock,
        key_prefix: str = "pzm",
        router: Router | None = None,
        snoozes: SnoozeStore | None = None,
        dashboard_url: str | None = None,
        resolved_retention: timedelta = timedelta(minutes=10),
    ) -> None:
        self.redis = redis
        self.sinks = tuple(sinks)
        self.clock = clock
        self.prefix = key_prefix
        self.keys = RedisKeys(key_prefix)
        self.stream = self.keys.outbox()
        self.router = router or Router.to_all(self.sinks)
        self.snoozes = snoozes
        self.store = AlertStore(redis, key_prefix=key_prefix)
        self.dashboard_url = dashboard_url
        self.resolved_retention = resolved_retention
        self._groups_ready = False
        self.delete_idle_consumer = redis.register_script(_DELETE_IDLE_CONSUMER)
        # in-process sink workers are woken the moment something is written, instead of at
        # their next poll of the stream (the poll remains, for entries from other processes)
        self._nudges: list[asyncio.Event] = []

    def subscribe(self) -> asyncio.Event:
        """An event set whenever this outbox writes a notification."""
        event = asyncio.Event()
        self._nudges.append(event)
        return event

    def _nudge(self) -> None:
        for event in self._nudges:
            event.set()

    def sent_key(self, sink: str, n: Notification) -> str:
        return self.keys.sent(sink, n.idempotency_part)

    def fired_key(self, sink: str, alert: Alert) -> str:
        return self.keys.fired(sink, alert.fingerprint, rfc3339(alert.starts_at))

    async def ensure_groups(self) -> None:
        if self._groups_ready:
            return
        for sink in self.sinks:
            try:
                await self.redis.xgroup_create(self.stream, sink, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def groups_lost(self) -> None:
        """Redis answered NOGROUP (it lost its data): create the groups again before the next
        read. Created at id 0, so entries written since the loss are read too."""
        self._groups_ready = False

    async def requeue(self, notifications: Sequence[Notification]) -> int:
        """Write notifications again as they are (a worker re-queueing what it held in memory
        when the stream it came from was lost); records are left alone."""
        if not notifications:
            return 0
        await self.ensure_groups()
        async with self.redis.pipeline(transaction=True) as pipe:
            for n in notifications:
                pipe.xadd(self.stream, {b"n": n.to_json()})
            await pipe.execute()
        self._nudge()
        return len(notifications)

    async def reannounce(
        self, alerts: Sequence[Alert], fired_at: Sequence[datetime | None] | None = None
    ) -> int:
        """Publish firing alerts again after Redis lost its data: each one whose record is gone
        gets its record back and its first notification again, marked as a redelivery (same
        idempotency key as the first send, so a receiver that has it can drop it)."""
        written = 0
        now = self.clock.now()
        fired = list(fired_at) if fired_at is not None else [None] * len(alerts)
        await self.ensure_groups()
        for alert, at in zip(alerts, fired, strict=True):

            def plan(
                existing: AlertRecord | None, alert: Alert = alert, at: datetime | None = at
            ) -> tuple[AlertRecord, Notification | None] | None:
                if existing is not None:
                    return None  # published again since the loss: it is in the stream
                planned = plan_publish(None, alert, now, self.router, at)
                if planned is None:
                    return None
                record, n = planned
                return record, replace(n, redelivery=True)

            written += await self._update(alert.fingerprint, plan)
        if written:
            self._nudge()
        return written

    # --- writing ---------------------------------------------------------------------------

    async def publish_transitions(
        self, transitions: Sequence[AlertTransition], *, fence: Fence | None = None
    ) -> None:
        """Publish engine transitions (the pipeline's `AlertPublisher`)."""
        alerts = [alert_from_transition(t, dashboard_url=self.dashboard_url) for t in transitions]
        await self.publish(alerts, fired_at=[t.ideal_at for t in transitions], fence=fence)

    async def publish(
        self,
        alerts: Sequence[Alert],
        *,
        fired_at: Sequence[datetime | None] | None = None,
        fence: Fence | None = None,
    ) -> int:
        """Record the alerts and write their notifications to the stream, all in one
        transaction (WATCH/MULTI); returns the number of entries written. `fired_at` (one per
        alert) is when each should have fired, for alerts published late. With `fence`, the
        transaction also watches the fencing token and raises `FencedOut` if it is not ours."""
        await self.ensure_groups()
        if not alerts:
            return 0
        fired = list(fired_at) if fired_at is not None else [None] * len(alerts)
        now = self.clock.now()
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await _watch(pipe, self.store.key, fence)
                    fps = list(dict.fromkeys(a.fingerprint for a in alerts))
                    raws = await pipe.hmget(self.store.key, fps)
                    current = {
                        fp: AlertRecord.from_json(raw) if raw is not None else None
                        for fp, raw in zip(fps, raws, strict=True)
                    }
                    writes: list[tuple[AlertRecord, Notification]] = []
                    for alert, at in zip(alerts, fired, strict=True):
                        planned = plan_publish(
                            current[alert.fingerprint], alert, now, self.router, at
                        )
                        if planned is not None:
                            writes.append(planned)
                            current[alert.fingerprint] = planned[0]
                    if not writes:
                        await pipe.reset()  # type: ignore[no-untyped-call]  # untyped in redis-py
                        return 0
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    written = 0
                    for record, notification in writes:
                        pipe.hset(self.store.key, record.alert.fingerprint, record.to_json())
                        if notification.targets:
                            pipe.xadd(self.stream, {b"n": notification.to_json()})
                            written += 1
                    await pipe.execute()
                    if written:
                        self._nudge()
                    return written
                except WatchError:
                    continue

    async def _update(
        self,
        fingerprint: str,
        plan: Callable[[AlertRecord | None], tuple[AlertRecord, Notification | None] | None],
        fence: Fence | None = None,
    ) -> int:
        """Read-modify-write one record and append its notification, atomically (WATCH/MULTI)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await _watch(pipe, self.store.key, fence)
                    raw = await pipe.hget(self.store.key, fingerprint)
                    existing = AlertRecord.from_json(raw) if raw is not None else None
                    planned = plan(existing)
                    if planned is None:
                        await pipe.reset()  # type: ignore[no-untyped-call]  # untyped in redis-py
                        return 0
                    record, notification = planned
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    pipe.hset(self.store.key, fingerprint, record.to_json())
                    if notification is not None and notification.targets:
                        pipe.xadd(self.stream, {b"n": notification.to_json()})
                    await pipe.execute()
                    return int(notification is not None and bool(notification.targets))
                except WatchError:
                    continue

    async def tick(self, fence: Fence | None = None) -> int:
        """Enqueue due repeats and escalations of still-firing alerts; forget old resolves."""
        await self.ensure_groups()
        now = self.clock.now()
        written = 0
        for record in await self.store.firing():
            alert = record.alert
            if self.snoozes is not None and await self.snoozes.muted(alert):
                continue
            due = [
                r
                for r in self.router.match(alert)
                if repeat_due(
                    record.last_sent.get(r.name, record.updated_at), r.repeat_interval, now
                )
            ]
            if due:
                plan = self._plan_repeat(alert, now)
                written += await self._update(alert.fingerprint, plan, fence)
            for esc in self.router.escalations_for(alert):
                if esc.name not in record.escalated and escalation_due(
                    alert.starts_at, esc.after, now
                ):
                    plan = self._plan_escalation(alert, esc.name, now)
                    written += await self._update(alert.fingerprint, plan, fence)
        await self.store.forget_resolved(self.resolved_retention, now)
        return written

    def _plan_repeat(
        self, alert: Alert, now: datetime
    ) -> Callable[[AlertRecord | None], tuple[AlertRecord, Notification | None] | None]:
        def plan(existing: AlertRecord | None) -> tuple[AlertRecord, Notification | None] | None:
            if existing is None or existing.alert != alert:
                return None  # resolved or replaced meanwhile
            due = [
                r
                for r in self.router.match(alert)
                if repeat_due(
                    existing.last_sent.get(r.name, existing.updated_at), r.repeat_interval, now
                )
            ]
            if not due:
                return None
            targets: dict[str, datetime | None] = {}
            for route in due:
                # this route alone, with the router's per-sink filters (a DM sink's rules)
                only = replace(self.router, routes=(route,), escalations=())
                for sink, hold in only.targets(alert, now).items():
                    targets[sink] = targets.get(sink, hold)
            seq = existing.seq + 1
            record = existing.with_(
                seq=seq, last_sent={**existing.last_sent, **{r.name: now for r in due}}
            )
            return record, Notification(alert, f"repeat:{seq}", targets, now)

        return plan

    def _plan_escalation(
        self, alert: Alert, name: str, now: datetime
    ) -> Callable[[AlertRecord | None], tuple[AlertRecord, Notification | None] | None]:
        def plan(existing: AlertRecord | None) -> tuple[AlertRecord, Notification | None] | None:
            if existing is None or existing.alert != alert or name in existing.escalated:
                return None
            esc = next(e for e in self.router.escalations if e.name == name)
            only = replace(self.router, routes=(), escalations=(esc,))
            targets = only.targets(alert, now, include_escalations=True)
            record = existing.with_(escalated=(*existing.escalated, name))
            return record, Notification(alert, f"escalation:{name}", targets, now)

        return plan

    # --- housekeeping --------------------------------------------------------------------------

    async def _groups(self) -> list[dict[str, Any]]:
        try:
            groups: list[dict[str, Any]] = await self.redis.xinfo_groups(self.stream)
        except ResponseError:
            return []  # no stream yet
        return groups

    async def _enqueued_at(self, entry_id: bytes | str) -> datetime | None:
        rows = await self.redis.xrange(self.stream, min=entry_id, max=entry_id, count=1)
        if not rows or not rows[0][1]:
            return None
        return Notification.from_json(rows[0][1][b"n"]).enqueued_at

    async def backlog(self) -> dict[str, SinkBacklog]:
        """Per sink: entries not yet acknowledged, and the age of the oldest one."""
        now = self.clock.now()
        out = {s: SinkBacklog(0, 0.0) for s in self.sinks}
        for g in await self._groups():
            name = _text(g["name"])
            if name not in out:
                continue
            last = _text(g["last-delivered-id"])
            undelivered: list[Any] = list(
                await self.redis.xrange(self.stream, min=f"({last}", count=10_000) or []
            )
            pending = int(g["pending"]) + len(undelivered)
            oldest_id: bytes | str | None = None
            if int(g["pending"]):
                summary = await self.redis.xpending(self.stream, name)
                oldest_id = summary["min"]
            elif undelivered:
                oldest_id = undelivered[0][0]
            age = 0.0
            if oldest_id is not None:
                at = await self._enqueued_at(oldest_id)
                age = max(0.0, (now - at).total_seconds()) if at else 0.0
            out[name] = SinkBacklog(pending, age)
        return out

    async def trim(self) -> None:
        """Drop stream entries every group has acknowledged."""
        floor: list[tuple[int, int]] = []
        for g in await self._groups():
            name = _text(g["name"])
            if int(g["pending"]):
                floor.append(
                    _parse_id(_text((await self.redis.xpending(self.stream, name))["min"]))
                )
            else:
                floor.append(_parse_id(_text(g["last-delivered-id"])))
        if floor and len(floor) >= len(self.sinks):
            ms, seq = min(floor)
            await self.redis.xtrim(self.stream, minid=f"{ms}-{seq}", approximate=False)


async def _watch(pipe: Any, key: str, fence: Fence | None) -> None:
    """WATCH `key` (and the fencing token, checked now: a change before EXEC aborts it)."""
    if fence is None:
        await pipe.watch(key)
        return
    await pipe.watch(key, fence.key)
    await fence.verify(pipe)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(slots=True)
class _Entry:
    id: bytes
    notification: Notification | None  # None: the entry was trimmed away
    recovered: bool = False  # read from the pending list at start: it may have been sent


class _Memory:
    """A bounded set that forgets its oldest members first (what a worker remembers)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, key: str) -> None:
        self._items[key] = None
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items


def collapse(
    entries: Sequence[_Entry], sink: str, group_wait: timedelta
) -> tuple[list[_Entry], list[_Entry]]:
    """Drop firing notifications that nobody needs any more: those whose resolve followed within
    `group_wait` (as in Alertmanager) or that were held by quiet hours and resolved meanwhile.
    A firing that was merely delayed by an outage is still delivered: when the notification
    knows when it should have fired (`fired_at`), the episode's real length decides, not when
    the two were written (a Redis outage writes both in one cycle). Returns (kept, dropped)."""
    resolves = {
        (e.notification.alert.fingerprint, e.notification.alert.starts_at): e.notification
        for e in entries
        if e.notification is not None and e.notification.alert.status == "resolved"
    }
    kept: list[_Entry] = []
    dropped: list[_Entry] = []
    for e in entries:
        n = e.notification
        if n is not None and n.alert.status == "firing":
            resolve = resolves.get((n.alert.fingerprint, n.alert.starts_at))
            if resolve is not None and (
                n.targets.get(sink) is not None or _episode(n, resolve) <= group_wait
            ):
                dropped.append(e)
                continue
        kept.append(e)
    return kept, dropped


def _episode(firing: Notification, resolve: Notification) -> timedelta:
    """How long the alert was known to fire before its resolve."""
    if firing.fired_at is not None and resolve.alert.ends_at is not None:
        return resolve.alert.ends_at - firing.fired_at
    return resolve.enqueued_at - firing.enqueued_at


REDIS_RETRY_CAP = 5.0  # seconds between a worker's attempts while Redis fails
BREAKER_CLOSED = 0  # delivering normally
BREAKER_OPEN = 1  # the last attempt failed: waiting out the backoff
BREAKER_HALF_OPEN = 2  # trying again after a failure


class SinkBreaker:
    """One sink's backoff, shared by all its batches: after a failed send, no attempt of any
    batch happens before the backoff (or the receiver's Retry-After) has passed, whatever is
    published meanwhile. Logs the ok -> failing transition once, then a summary every
    `summary_every` seconds while it lasts, and the recovery."""

    def __init__(
        self,
        sink: str,
        clock: Clock,
        *,
        base: float,
        cap: float,
        retry_after_cap: float = 3600.0,
        summary_every: float = 60.0,
        metrics: AlertMetrics | None = None,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.base = base
        self.cap = cap
        self.retry_after_cap = retry_after_cap
        self.summary_every = summary_every
        self.metrics = metrics
        self.failures = 0
        self.next_attempt: float | None = None  # clock.monotonic()
        self.failing_since: float | None = None
        self._last_log = 0.0
        self._set_state(BREAKER_CLOSED)

    def _set_state(self, state: int) -> None:
        if self.metrics is not None:
            self.metrics.breaker_state.labels(sink=self.sink).set(state)

    def wait_time(self) -> float:
        """Seconds until the next attempt may start (0: now)."""
        if self.next_attempt is None:
            return 0.0
        return max(0.0, self.next_attempt - self.clock.monotonic())

    def delay(self, exc: SinkError) -> float:
        """The wait after a failure: what the receiver asked for (never less than `base`, at
        most `retry_after_cap`), else exponential from `base` to `cap`; jittered either way."""
        asked = exc.wait_seconds(self.clock.now())
        if asked is not None:
            return min(self.retry_after_cap, max(asked, self.base)) * random.uniform(1.0, 1.1)
        own: float = min(self.cap, self.base * 2.0 ** min(self.failures - 1, 30))
        return own * random.uniform(0.8, 1.0)  # jitter, not security

    def attempting(self) -> None:
        if self.failures:
            self._set_state(BREAKER_HALF_OPEN)

    def failed(self, exc: SinkError) -> float:
        now = self.clock.monotonic()
        self.failures += 1
        delay = self.delay(exc)
        self.next_attempt = now + delay
        self._set_state(BREAKER_OPEN)
        if self.failures == 1:
            self.failing_since = self._last_log = now
            log.warning("sink.failing", sink=self.sink, error=str(exc), retry_in=round(delay, 1))
        elif now - self._last_log >= self.summary_every:
            self._last_log = now
            log.warning(
                "sink.still_failing",
                sink=self.sink,
                attempts=self.failures,
                failing_for=round(now - (self.failing_since or now)),
                error=str(exc),
                retry_in=round(delay, 1),
            )
        return delay

    def succeeded(self) -> None:
        if self.failures:
            failing_for = self.clock.monotonic() - (self.failing_since or 0.0)
            log.info(
                "sink.recovered",
                sink=self.sink,
                attempts=self.failures,
                failing_for=round(failing_for),
            )
        self.failures = 0
        self.next_attempt = self.failing_since = None
        self._set_state(BREAKER_CLOSED)


class SinkWorker:
    """Delivers one sink's share of the outbox, in order."""

    def __init__(
        self,
        outbox: Outbox,
        name: str,
        sink: Sink,
        *,
        clock: Clock,
        metrics: AlertMetrics | None = None,
        snoozes: SnoozeStore | None = None,
        consumer: str = "main",
        group_wait: timedelta = timedelta(seconds=2),
        poll_interval: float = 0.5,
        retry_base: float = 1.0,
        retry_cap: float = 60.0,
        retry_after_cap: float = 3600.0,
        max_age: timedelta = timedelta(hours=6),
        claim_idle: timedelta = timedelta(minutes=1),
        idempotency_ttl: timedelta = timedelta(days=2),
        read_count: int = 500,
        gate: DeliveryGate | None = None,
        reload_interval: float = 5.0,
    ) -> None:
        self.outbox = outbox
        # several replicas: deliver only while the gate's lease is ours, and then everything
        # (other consumers' pending entries are claimed at every reload, `reload_interval`)
        self.gate = gate
        self.reload_interval = reload_interval
        self._fence: Fence | None = None
        self._loaded_at: float | None = None
        self.name = name
        self.sink = sink
        self.clock = clock
        self.metrics = metrics
        self.snoozes = snoozes
        self.consumer = consumer
        self.group_wait = group_wait
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.max_age = max_age
        self.claim_idle = claim_idle
        self.idempotency_ttl = idempotency_ttl
        self.read_count = read_count
        self.stopping = asyncio.Event()
        self.nudged = outbox.subscribe()
        if metrics is not None:
            metrics.init_sink(name)
        self.breaker = SinkBreaker(
            name,
            clock,
            base=retry_base,
            cap=retry_cap,
            retry_after_cap=retry_after_cap,
            metrics=metrics,
        )
        self._backlog: list[_Entry] | None = None
        self._loaded_once = False
        self._to_requeue: list[Notification] = []
        # what this process attempted and sent: survives a Redis that lost its records
        self._attempted = _Memory()
        self._sent = _Memory()
        self._fired = _Memory()

    @property
    def _redis(self) -> aioredis.Redis:
        return self.outbox.redis

    async def _sleep(self, seconds: float, *, nudgeable: bool = True) -> None:
        """Sleep on the injected clock, waking early when asked to stop, and (`nudgeable`) when
        something is published. Backoff sleeps are not nudgeable: a publish must not shorten
        them."""
        if self.stopping.is_set():
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waits = [
            asyncio.ensure_future(self.clock.sleep(seconds)),
            asyncio.ensure_future(self.stopping.wait()),
        ]
        if nudgeable:
            waits.append(asyncio.ensure_future(self.nudged.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def run(self) -> None:
        """Deliver until stopped; Redis outages are waited out (nothing is acknowledged then)."""
        failures = 0
        while not self.stopping.is_set():
            try:
                await self.step()
                if failures:
                    log.info("outbox.redis_recovered", sink=self.name, failures=failures)
                failures = 0
            except FencedOut as exc:
                self._backlog = None  # another replica delivers now: hold nothing
                self._fence = None
                if self.gate is not None:
                    self.gate.lost(exc)
                await self._sleep(self.poll_interval, nudgeable=False)
            except RedisError as exc:
                failures += 1
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    self._groups_lost()
                self._backlog = None  # re-read our pending list once Redis is back
                if failures == 1:
                    log.warning("outbox.redis_error", sink=self.name, error=type(exc).__name__)
                # one cheap command every few seconds at most: delivery resumes within that
                # long of Redis coming back, however long it was gone
                delay = min(REDIS_RETRY_CAP, self.retry_base * 2 ** min(failures, 6))
                await self._sleep(delay, nudgeable=False)
            except Exception:
                # a bug must not end this sink's deliveries for good: log, back off, go on
                failures += 1
                self._backlog = None
                log.exception("outbox.worker_error", sink=self.name)
                delay = min(self.retry_cap, self.retry_base * 2 ** min(failures, 6))
                await self._sleep(delay, nudgeable=False)

    def _groups_lost(self) -> None:
        """Redis lost the stream: keep what we held in memory to write it again."""
        held = [
            e.notification.only_for(self.name)
            for e in self._backlog or []
            if e.notification is not None and self.name in e.notification.targets
        ]
        known = {n.to_json() for n in self._to_requeue}
        self._to_requeue.extend(n for n in held if n.to_json() not in known)
        self._backlog = None
        self.outbox.groups_lost()
        log.error("outbox.stream_lost", sink=self.name, requeued=len(self._to_requeue))

    async def _load_backlog(self) -> list[_Entry]:
        await self.outbox.ensure_groups()
        recovered = not self._loaded_once
        entries: list[_Entry] = []
        # our own pending list first: entries read before a crash but never acknowledged
        last = "0"
        while True:
            resp = await self._redis.xreadgroup(
                self.name, self.consumer, {self.outbox.stream: last}, count=self.read_count
            )
            rows = _stream_rows(resp)
            if not rows:
                break
            entries.extend(_entries(rows, recovered=recovered))
            last = _text(rows[-1][0])
        # then other consumers' idle ones (another instance that died); under a gate, all of
        # them: only the lease holder delivers, so whatever another consumer holds is orphaned
        idle_ms = 0 if self.gate is not None else int(self.claim_idle.total_seconds() * 1000)
        start = "0-0"
        while True:
            claimed: Any = await self._redis.xautoclaim(
                self.outbox.stream,
                self.name,
                self.consumer,
                min_idle_time=idle_ms,
                start_id=start,
                count=self.read_count,
            )
            nxt, rows = claimed[0], claimed[1]
            known = {e.id for e in entries}
            entries.extend(e for e in _entries(rows, recovered=True) if e.id not in known)
            start = _text(nxt)
            if start == "0-0":
                break
        entries.sort(key=lambda e: _parse_id(_text(e.id)))
        self._loaded_once = True
        self._loaded_at = self.clock.monotonic()
        if self.gate is not None:
            await self._forget_idle_consumers()
        return entries

    async def _forget_idle_consumers(self) -> None:
        """Replicas come and go under new names: drop the group's other consumers once they hold
        nothing (everything was just claimed), so the group does not grow with every restart."""
        stream, group = self.outbox.stream, self.name
        for c in await self._redis.xinfo_consumers(stream, group):
            name = _text(c["name"])
            if name != self.consumer and not int(c["pending"]):
                # checked again atomically: deleting a consumer orphans what it holds
                await self.outbox.delete_idle_consumer(keys=[stream], args=[group, name])

    async def _read_new(self) -> list[_Entry]:
        resp = await self._redis.xreadgroup(
            self.name, self.consumer, {self.outbox.stream: ">"}, count=self.read_count
        )
        return _entries(_stream_rows(resp))

    async def step(self) -> None:
        """Read what is new, deliver what is ready, then wait a little if nothing moved."""
        if self.stopping.is_set():
            return  # draining: no new batches
        if not self._gate_open():
            await self._sleep(self.poll_interval, nudgeable=False)
            return
        if self._to_requeue:
            await self.outbox.requeue(self._to_requeue)
            self._to_requeue = []
        if self._backlog is None:
            self._backlog = await self._load_backlog()
        self.nudged.clear()  # anything written from here on is read by the next step
        self._backlog.extend(await self._read_new())
        wake = await self._process()
        if self.stopping.is_set():
            return
        delay = self.poll_interval
        if wake is not None:
            delay = min(delay, max(0.0, (wake - self.clock.now()).total_seconds()))
        if wake is None or delay > 0:
            await self._sleep(delay)

    def _gate_open(self) -> bool:
        """Without a gate, always. With one: while its lease is ours; a new lease (a new
        fencing token) and every `reload_interval` re-read the backlog, claiming orphans."""
        if self.gate is None:
            return True
        fence = self.gate.fence
        if fence is None:
            self._backlog = None
            self._fence = None
            return False
        stale = self._loaded_at is None or (
            self.clock.monotonic() - self._loaded_at >= self.reload_interval
        )
        if fence != self._fence or stale:
            self._fence = fence
            self._backlog = None
        return True

    async def _ack(self, entries: Iterable[_Entry]) -> None:
        ids = [e.id for e in entries]
        if ids:
            await self._redis.xack(self.outbox.stream, self.name, *ids)
            self._forget(ids)

    def _forget(self, ids: Sequence[bytes]) -> None:
        gone = set(ids)
        if self._backlog is not None:
            self._backlog = [e for e in self._backlog if e.id not in gone]

    async def _process(self) -> datetime | None:
        """Deliver the ready part of the backlog; returns when something held becomes ready."""
        assert self._backlog is not None
        now = self.clock.now()
        not_ours: list[_Entry] = []
        ready: list[_Entry] = []
        blocked: set[str] = set()
        wake: datetime | None = None
        for e in self._backlog:
            n = e.notification
            if n is None or self.name not in n.targets:
                not_ours.append(e)
                continue
            fp = n.alert.fingerprint
            hold = n.targets[self.name]
            if fp in blocked or (hold is not None and hold > now):
                # later notifications about a held alert wait behind it
                blocked.add(fp)
                if hold is not None and hold > now:
                    wake = hold if wake is None else min(wake, hold)
                continue
            ready.append(e)
        await self._ack(not_ours)
        if not ready:
            return wake
        assert all(e.notification for e in ready)
        first_ready = min(self._ready_since(e.notification) for e in ready if e.notification)
        if now < first_ready + self.group_wait:
            # group_wait: let simultaneous alerts gather so they go out as one message
            due = first_ready + self.group_wait
            return due if wake is None else min(wake, due)
        await self._deliver_ready(ready)
        return wake

    def _ready_since(self, n: Notification) -> datetime:
        hold = n.targets.get(self.name)
        return n.enqueued_at if hold is None else max(n.enqueued_at, hold)

    async def _deliver_ready(self, ready: list[_Entry]) -> None:
        kept, dropped = collapse(ready, self.name, self.group_wait)
        await self._ack(dropped)
        for batch in self._batches(kept):
            if self.stopping.is_set():
                return  # draining: the rest stays pending for the next start
            # judged batch by batch: a resolve is sendable once its firing went out just before
            to_send, skipped = await self._screen(batch)
            await self._ack(skipped)
            if to_send and not await self._deliver(to_send):
                return  # stopping: the rest stays pending for the next start

    async def _screen(self, batch: Sequence[_Entry]) -> tuple[list[_Entry], list[_Entry]]:
        """Split a batch into what to send and what to acknowledge unsent."""
        to_send: list[_Entry] = []
        skipped: list[_Entry] = []
        for e in batch:
            n = e.notification
            assert n is not None
            if await self._already_sent(n):
                skipped.append(e)  # delivered before a crash or redelivery
            elif n.alert.status == "resolved":
                if _episode_key(n.alert) in self._fired or await self._redis.exists(
                    self.outbox.fired_key(self.name, n.alert)
                ):
                    to_send.append(e)
                else:
                    skipped.append(e)  # nobody here was told it fired
            elif self.snoozes is not None and (why := await self.snoozes.muted(n.alert)):
                log.info("outbox.muted", sink=self.name, fingerprint=n.alert.fingerprint, why=why)
                skipped.append(e)
            else:
                to_send.append(e)
        return to_send, skipped

    async def _already_sent(self, n: Notification) -> bool:
        # a re-announcement after data loss is sent even if this process sent it before (the
        # receiver may never have had it); only a send since the loss (in Redis) stops it
        if not n.redelivery and n.idempotency_part in self._sent:
            return True
        return bool(await self._redis.exists(self.outbox.sent_key(self.name, n)))

    def _batches(self, entries: Sequence[_Entry]) -> list[list[_Entry]]:
        """Group by team (first-seen order), cut to the sink's message size, and never put two
        notifications about one alert in one message (its firing goes out before its resolve)."""
        by_team: dict[str, list[_Entry]] = {}
        for e in entries:
            assert e.notification is not None
            by_team.setdefault(e.notification.alert.team, []).append(e)
        size = max(1, self.sink.max_batch)
        batches: list[list[_Entry]] = []
        for group in by_team.values():
            current: list[_Entry] = []
            seen: set[str] = set()
            for e in group:
                assert e.notification is not None
                fp = e.notification.alert.fingerprint
                if len(current) >= size or fp in seen:
                    batches.append(current)
                    current, seen = [], set()
                current.append(e)
                seen.add(fp)
            if current:
                batches.append(current)
        return batches

    def _delivery(self, e: _Entry) -> Delivery:
        n = e.notification
        assert n is not None
        kind: DeliveryKind = "first" if n.tag == FIRST else "repeat"
        if n.redelivery or e.recovered or n.idempotency_part in self._attempted:
            kind = "redelivery"
        return Delivery(n.idempotency_key, kind)

    async def _wait_for_breaker(self) -> bool:
        """Wait out the sink's backoff; False when stopping (no new attempt then)."""
        while (wait := self.breaker.wait_time()) > 0 and not self.stopping.is_set():
            await self._sleep(wait, nudgeable=False)
        return not self.stopping.is_set()

    async def _deliver(self, batch: list[_Entry]) -> bool:
        """Send one batch, retrying until done; False only when stopping before success."""
        notifications = [e.notification for e in batch if e.notification is not None]
        while True:
            if not await self._wait_for_breaker():
                return False
            deliveries = [self._delivery(e) for e in batch]
            for n in notifications:
                self._attempted.add(n.idempotency_part)
            if self.breaker.failures:
                self._count("retries")
            self.breaker.attempting()
            if self._fence is not None:  # another replica may deliver now: do not send twice
                await self._fence.verify(self._redis)
            try:
                await self.sink.send([n.alert for n in notifications], deliveries)
            except SinkError as exc:
                self._count("failures")
                age = self.clock.now() - min(n.enqueued_at for n in notifications)
                if exc.permanent or age > self.max_age:
                    log.error(
                        "outbox.dropped",
                        sink=self.name,
                        alerts=len(batch),
                        permanent=exc.permanent,
                        error=str(exc),
                    )
                    await self._ack(batch)
                    return True
                self.breaker.failed(exc)
                continue
            except Exception:
                # not a delivery failure but a fault of ours (e.g. a message we cannot build):
                # retrying cannot help, and blocking the sink for `max_age` would hurt more
                log.exception("outbox.sink_bug", sink=self.name, alerts=len(batch))
                self._count("failures")
                await self._ack(batch)
                return True
            self.breaker.succeeded()
            await self._record(batch, notifications)
            self._count("notifications", len(notifications))
            return True

    def _remember(self, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            self._sent.add(n.idempotency_part)
            if n.alert.status == "firing":
                self._fired.add(_episode_key(n.alert))
            else:
                self._fired.discard(_episode_key(n.alert))

    async def _record(self, batch: list[_Entry], notifications: list[Notification]) -> None:
        """Write the idempotency records and acknowledge, retrying through a Redis outage: the
        message went out, so forgetting that now would send it again."""
        self._remember(notifications)
        ttl = int(self.idempotency_ttl.total_seconds())
        attempt = 0
        while True:
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    if self._fence is not None:  # acknowledged only while we deliver
                        await pipe.watch(self._fence.key)
                        await self._fence.verify(pipe)
                        pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    for n in notifications:
                        pipe.set(self.outbox.sent_key(self.name, n), b"1", nx=True, ex=ttl)
                        if n.alert.status == "firing":
                            pipe.set(self.outbox.fired_key(self.name, n.alert), b"1", ex=ttl)
                    pipe.xack(self.outbox.stream, self.name, *[e.id for e in batch])
                    await pipe.execute()
                self._forget([e.id for e in batch])
                return
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # the records were written; the entries went with the lost stream
                self._forget([e.id for e in batch])
                self._groups_lost()
                return
            except RedisError as exc:
                attempt += 1
                log.warning("outbox.record_retry", sink=self.name, error=type(exc).__name__)
                if self.stopping.is_set() and attempt > 3:
                    raise
                await self.clock.sleep(min(2.0, 0.05 * 2**attempt))

    def _count(self, what: str, n: int = 1) -> None:
        if self.metrics is not None:
            getattr(self.metrics, what).labels(sink=self.name).inc(n)


def _episode_key(alert: Alert) -> str:
    return f"{alert.fingerprint}:{rfc3339(alert.starts_at)}"


def _stream_rows(resp: Any) -> list[Any]:
    """The entries of a one-stream XREADGROUP reply, in RESP2 (list) or RESP3 (dict) shape."""
    if not resp:
        return []
    if isinstance(resp, dict):
        value = next(iter(resp.values()))
        return list(value[0]) if value and isinstance(value[0], list) else list(value)
    return list(resp[0][1])


def _entries(rows: Sequence[Any], *, recovered: bool = False) -> list[_Entry]:
    out: list[_Entry] = []
    for entry_id, fields in rows:
        n = Notification.from_json(fields[b"n"]) if fields else None
        out.append(_Entry(entry_id, n, recovered))
    return out


Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class Dispatcher:
    """Runs one `SinkWorker` per sink plus the timer (repeats, escalations, trimming, metrics)."""

    def __init__(
        self,
        outbox: Outbox,
        sinks: Mapping[str, Sink],
        *,
        clock: Clock,
        metrics: AlertMetrics | None = None,
        snoozes: SnoozeStore | None = None,
        tick_interval: float = 5.0,
        background: Sequence[Background] = (),
        **worker_options: Any,
    ) -> None:
        self.outbox = outbox
        self.clock = clock
        self.metrics = metrics
        self.tick_interval = tick_interval
        self.gate: DeliveryGate | None = worker_options.get("gate")
        self.workers = {
            name: SinkWorker(
                outbox, name, sink, clock=clock, metrics=metrics, snoozes=snoozes, **worker_options
            )
            for name, sink in sinks.items()
        }
        self._background = list(background)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.outbox.ensure_groups()
        for name, worker in self.workers.items():
            self._tasks.append(asyncio.create_task(worker.run(), name=f"sink-{name}"))
        self._tasks.append(asyncio.create_task(self._timer(), name="outbox-timer"))
        for bg in self._background:
            self._tasks.append(asyncio.create_task(bg(self._stopping)))

    async def _timer(self) -> None:
        redis_failing = False
        while not self._stopping.is_set():
            try:
                await self._tick()
                await self.outbox.trim()
                if self.metrics is not None:
                    self.metrics.outbox.snapshot = await self.outbox.backlog()
                redis_failing = False
            except RedisError as exc:
                if not redis_failing:  # once per outage: the Redis guard reports the rest
                    log.warning("outbox.timer_redis_error", error=type(exc).__name__)
                redis_failing = True
            except FencedOut as exc:
                if self.gate is not None:
                    self.gate.lost(exc)
            except Exception:
                log.exception("outbox.timer_error")  # keep ticking: repeats must not stop
            sleeper = asyncio.ensure_future(self.clock.sleep(self.tick_interval))
            stopper = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for t in (sleeper, stopper):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _tick(self) -> None:
        """Repeats and escalations: by the delivering replica only, fenced by its lease."""
        if self.gate is None:
            await self.outbox.tick()
        elif (fence := self.gate.fence) is not None:
            await self.outbox.tick(fence)

    def begin_stop(self) -> None:
        """Start no new batch from now on (requests in flight go on); `stop` waits for them."""
        self._stopping.set()
        for worker in self.workers.values():
            worker.stopping.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Ask everything to finish its current step, wait up to `grace` s, then cancel."""
        self.begin_stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
