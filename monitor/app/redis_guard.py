"""Watches the monitor's Redis: whether it answers (`puzzelmon_redis_up`), and whether it still
holds the data this monitor wrote.

A Redis restarted without persistence comes back empty: consumer groups, alert records, engine
memory and schedules are gone, and nothing in Redis says so. The guard writes a random epoch
key when it starts; a later check that finds the key missing (or replaced) means the data was
lost. It then counts the loss, logs it, runs the recovery it was given (the assembly rebuilds
what the monitor holds in memory) and raises an alert of its own, `redis_data_lost`, which
resolves once every tenant that had schedules has them again (and not before `alert_hold`).
Until then `problems()` names those tenants, and `/readyz` fails with them.

Through Redis Sentinel the guard also notes which primary the client is connected to: a failover
(Sentinel promoted a replica, the client followed) is logged and counted
(`puzzelmon_redis_primary_changes_total`). The data survives a failover on the replica, so the
epoch check above stays quiet unless the replica was empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.exceptions import RedisError

from monitor.alerts.model import Alert
from monitor.core.clock import Clock
from monitor.core.keys import RedisKeys

log = structlog.get_logger("monitor.redis")

DATA_LOST = "redis_data_lost"


class RedisGuard:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        clock: Clock,
        tenants: Sequence[str],
        schedule_version: Callable[[str], Awaitable[int]],
        recover: Callable[[], Awaitable[None]],
        publish: Callable[[Sequence[Alert]], Awaitable[object]],
        key_prefix: str = "pzm",
        registry: CollectorRegistry | None = None,
        alert_hold: timedelta = timedelta(minutes=10),
    ) -> None:
        self.redis = redis
        self.clock = clock
        self.tenants = list(tenants)
        self._schedule_version = schedule_version
        self._recover = recover
        self._publish = publish
        self.epoch_key = RedisKeys(key_prefix).epoch()
        self.alert_hold = alert_hold
        self.epoch: str | None = None
        self.up: bool | None = None
        self.had_schedules: set[str] = set()
        self.missing_schedules: set[str] = set()
        self.loss_alert: Alert | None = None
        self._up = Gauge(
            "puzzelmon_redis_up",
            "1 if the last Redis command of the monitor succeeded, else 0.",
            registry=registry,
        )
        self._losses = Counter(
            "puzzelmon_redis_data_losses",
            "Times Redis was found to have lost the monitor's data (restarted empty).",
            registry=registry,
        )
        self.primary: tuple[str, int] | None = None
        self._primary_changes = Counter(
            "puzzelmon_redis_primary_changes",
            "Times the monitor followed Redis Sentinel to a new primary (a failover).",
            registry=registry,
        )

    # --- reachability (also reported by the pipelines and housekeeping) ---------------------

    def mark_down(self, error: BaseException) -> None:
        if self.up is not False:
            log.warning("redis.down", error=type(error).__name__)
        self.up = False
        self._up.set(0)

    def mark_up(self) -> None:
        if self.up is False:
            log.info("redis.up")
        self.up = True
        self._up.set(1)

    # --- epoch -------------------------------------------------------------------------------

    async def _claim_epoch(self) -> str:
        await self.redis.set(self.epoch_key, uuid.uuid4().hex, nx=True)
        raw = await self.redis.get(self.epoch_key)
        return _text(raw) if raw is not None else ""

    async def start(self) -> None:
        """Adopt (or create) the epoch and note which tenants have schedules."""
        self.epoch = await self._claim_epoch()
        self.mark_up()
        self._note_primary()
        await self._check_schedules()

    async def check(self) -> None:
        """One round (a scheduler job): never raises for a Redis error, it reports it."""
        try:
            raw = await self.redis.get(self.epoch_key)
            if self.epoch is not None and (raw is None or _text(raw) != self.epoch):
                await self._lost()
            elif self.epoch is None:
                self.epoch = await self._claim_epoch()
            await self._check_schedules()
            await self._maybe_resolve()
        except RedisError as exc:
            self.mark_down(exc)
            return
        self.mark_up()
        self._note_primary()

    def _note_primary(self) -> None:
        # a Sentinel pool knows the primary it connects to (`master_address`); a plain one has none
        address = getattr(self.redis.connection_pool, "master_address", None)
        if address is None or address == self.primary:
            return
        if self.primary is not None:
            log.warning("redis.primary_changed", old=_address(self.primary), new=_address(address))
            self._primary_changes.inc()
        else:
            log.info("redis.primary", primary=_address(address))
        self.primary = (str(address[0]), int(address[1]))

    async def _lost(self) -> None:
        now = self.clock.now()
        self._losses.inc()
        had = sorted(self.had_schedules)
        log.error("redis.data_lost", tenants_with_schedules=had)
        # rebuild first, then take the new epoch: a recovery cut short is run again next round
        await self._recover()
        self.epoch = await self._claim_epoch()
        if self.loss_alert is None:
            self.loss_alert = data_lost_alert(now, had)
            await self._publish([self.loss_alert])

    async def _check_schedules(self) -> None:
        for tenant in self.tenants:
            if await self._schedule_version(tenant) > 0:
                self.had_schedules.add(tenant)
                if tenant in self.missing_schedules:
                    log.info("redis.schedules_back", tenant=tenant)
                self.missing_schedules.discard(tenant)
            elif tenant in self.had_schedules and tenant not in self.missing_schedules:
                log.error("redis.schedules_missing", tenant=tenant)
                self.missing_schedules.add(tenant)

    async def _maybe_resolve(self) -> None:
        alert = self.loss_alert
        if alert is None or self.missing_schedules:
            return
        now = self.clock.now()
        if now - alert.starts_at < self.alert_hold:
            return
        await self._publish([alert.resolved(now)])
        self.loss_alert = None

    def problems(self) -> dict[str, str]:
        """What keeps the monitor from being ready (for /readyz): name -> reason."""
        out = dict.fromkeys(self.missing_schedules, "schedules missing since Redis lost its data")
        if self.up is False:
            out["redis"] = "Redis does not answer"
        return out


def data_lost_alert(now: datetime, tenants: Sequence[str]) -> Alert:
    which = ", ".join(tenants) if tenants else "none"
    return Alert(
        labels={"alertname": DATA_LOST, "rule": DATA_LOST, "severity": "critical"},
        annotations={
            "summary": "Redis lost the monitor's data (restarted without persistence?): open "
            "alerts were re-announced; import the schedules again.",
            "description": f"Tenants whose schedules were lost: {which}. Run Redis with "
            "append-only persistence (see docs/deployment.md).",
        },
        starts_at=now,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _address(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"
