"""The whole monitor put together from a `Config`: Redis, schedules, rules, one pipeline per
tenant, alert delivery, pollers, the exporter and the HTTP API. Used by `run` and `demo`."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import aiohttp
import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry

from monitor.alerts.service import AlertingService
from monitor.app.config import Config
from monitor.app.service import Service, ServiceError
from monitor.core.clock import Clock, SystemClock
from monitor.engine.model import RuleSet
from monitor.history.api import history_routes
from monitor.history.approvals_api import approval_routes
from monitor.history.store import HistoryStore
from monitor.http.auth import bearer_middleware
from monitor.pipeline.cycle import PipelineSet, TenantPipeline, TransitionObserver
from monitor.pipeline.state_store import RedisEngineStateStore
from monitor.rules.loader import load_rules
from monitor.schedules.api import schedule_routes
from monitor.schedules.store import ScheduleStore

log = structlog.get_logger(__name__)

HOUSEKEEPING_INTERVAL = 15.0
HEARTBEAT_TTL = 60


class Monitor:
    """`start()` connects and serves; `stop()` drains polls, then delivery, then closes."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        redis: aioredis.Redis | None = None,
        ruleset: RuleSet | None = None,
        console_stream: TextIO | None = None,
        observers: tuple[TransitionObserver, ...] = (),
        host: str | None = None,
        port: int | None = None,
        key_prefix: str = "pzm",
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self._own_redis = redis is None
        self.redis = redis or aioredis.Redis.from_url(
            config.redis.url,
            password=(config.redis.password.get_secret_value() if config.redis.password else None),
        )
        # RulesError (a ValueError naming file and key) propagates: `run` exits 2 on it
        self.ruleset = ruleset or load_rules(Path(config.rules_path))
        self.key_prefix = key_prefix
        self.schedules = ScheduleStore(self.redis, key_prefix=key_prefix)
        registry = CollectorRegistry(auto_describe=False)
        self._session: aiohttp.ClientSession | None = None
        self.alerting = AlertingService(
            config.alerting,
            self.redis,
            clock=self.clock,
            registry=registry,
            console_stream=console_stream,
            key_prefix=key_prefix,
        )
        state_store = RedisEngineStateStore(self.redis, key_prefix=key_prefix)
        tenants = {t.customer_key: ZoneInfo(t.timezone) for t in config.tenants}
        self.history = HistoryStore(
            self.redis,
            tenants=tenants,
            clock=self.clock,
            key_prefix=key_prefix,
            retention=timedelta(seconds=config.history.retention),
        )
        self.pipelines = PipelineSet(
            [self._pipeline(t.customer_key, state_store, observers) for t in config.tenants]
        )
        routes = [
            schedule_routes(
                self.schedules, tenants=tenants, known_activities=set(self.ruleset.activities)
            ),
            self.alerting.routes(),
            history_routes(self.history, default_interval=config.history.interval_minutes),
            approval_routes(self.history),
        ]
        self.service = Service(
            config,
            clock=self.clock,
            sink=self.pipelines,
            engine=self.pipelines,
            routes=routes,
            middlewares=[bearer_middleware(config.api.token)],
            host=host,
            port=port,
            registry=registry,
        )

    def _pipeline(
        self,
        tenant: str,
        state_store: RedisEngineStateStore,
        observers: tuple[TransitionObserver, ...],
    ) -> TenantPipeline:
        recorder = self.history.recorder(tenant)
        return TenantPipeline(
            tenant=tenant,
            ruleset=self.ruleset,
            schedules=self.schedules,
            state_store=state_store,
            clock=self.clock,
            publisher=self.alerting,
            observers=(*observers, recorder.record_transitions),
            accrual_observers=[recorder.record_accruals],
            before_persist=[recorder.flush],
        )

    async def start(self) -> None:
        try:
            await self.redis.ping()
        except (aioredis.ConnectionError, OSError) as e:
            raise ServiceError(f"cannot reach Redis: {e}") from None
        await self.pipelines.start()
        for tenant, pipeline in self.pipelines.by_tenant.items():
            self.service.trackers[tenant] = pipeline.seed_tracker()
        await self.alerting.start()
        self.service.scheduler.add(
            "housekeeping", self.housekeeping, HOUSEKEEPING_INTERVAL, first_run_in=5.0
        )
        await self.service.start()

    @property
    def failed(self) -> BaseException | None:
        return self.service.failed

    async def wait_failed(self) -> BaseException | None:
        return await self.service.wait_failed()

    async def housekeeping(self) -> None:
        """Staleness rule per tenant, and a TTL heartbeat in Redis (for external health checks)."""
        for tenant, pollers in self.service.pollers.items():
            lacking = pollers.unsupported()  # an endpoint the tenant lacks is not stale
            last = {
                k: h.last_success
                for k, h in pollers.health.items()
                if h.last_success and k not in lacking
            }
            await self.pipelines.by_tenant[tenant].check_staleness(last)
        await self.redis.set(
            f"{self.key_prefix}:heartbeat", self.clock.now().isoformat(), ex=HEARTBEAT_TTL
        )

    async def stop(self, grace: float = 5.0) -> None:
        await self.service.stop(grace=grace)
        with contextlib.suppress(Exception):  # Redis may be the reason we are stopping
            await self.pipelines.persist()
        await self.alerting.stop(grace=grace)
        if self._own_redis:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
