"""The whole monitor put together from a `Config`: Redis, schedules, rules, one pipeline per
tenant, alert delivery, pollers, the exporter and the HTTP API. Used by `run` and `demo`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import aiohttp
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from monitor.alerts.service import AlertingService
from monitor.alerts.slack_users_api import slack_user_routes
from monitor.app.config import Config
from monitor.app.redis_client import describe_target, explain, redis_client
from monitor.app.redis_guard import RedisGuard
from monitor.app.replicas import Replicas, default_replica_id
from monitor.app.service import Service, ServiceError
from monitor.core.clock import Clock, SystemClock
from monitor.core.keys import RedisKeys
from monitor.engine.model import RuleSet
from monitor.history.api import history_routes
from monitor.history.approvals import ApprovalStore
from monitor.history.approvals_api import approval_routes
from monitor.history.queue_store import QueueIntervalRecorder
from monitor.history.store import HistoryStore
from monitor.http.auth import bearer_middleware
from monitor.mcp.http import PATH, McpEndpoint
from monitor.mcp.server import monitor_server
from monitor.mcp.view import MonitorView, live_tenants
from monitor.pipeline.cycle import (
    AlertPublisher,
    PipelineSet,
    ScheduleSource,
    TenantPipeline,
    TransitionObserver,
)
from monitor.pipeline.fenced_store import FencedEngineStateStore
from monitor.pipeline.leases import FencedOut, Lease, LeaseStore
from monitor.pipeline.state_store import EngineStateStore, RedisEngineStateStore
from monitor.rules.loader import load_rules
from monitor.schedules.api import schedule_routes
from monitor.schedules.store import ScheduleStore

log = structlog.get_logger(__name__)

HOUSEKEEPING_INTERVAL = 15.0
HEARTBEAT_TTL = 60
REDIS_CHECK_INTERVAL = 5.0


def tenant_pipeline(
    tenant: str,
    *,
    redis: aioredis.Redis,
    ruleset: RuleSet,
    clock: Clock,
    publisher: AlertPublisher | None,
    observers: Sequence[TransitionObserver] = (),
    key_prefix: str = "pzm",
    schedules: ScheduleSource | None = None,
    state_store: EngineStateStore | None = None,
    persist_interval: timedelta | None = None,
    make: Callable[..., TenantPipeline] = TenantPipeline,
    history: HistoryStore | None = None,
    queue_interval_minutes: int = 15,
    lease: Lease | None = None,
) -> TenantPipeline:
    """One tenant's cycle (schedules -> engine -> outbox -> persisted state): the one place it
    is put together (the monitor, replay, the benchmarks). Schedules and engine state are read
    from and written to `redis` under `key_prefix` unless given. With `lease` (replicas sharing
    tenants), the engine state and the outbox are written only while its fencing token holds,
    and the history is flushed only after the token was found ours."""
    extra: dict[str, Any] = (
        {} if persist_interval is None else {"persist_interval": persist_interval}
    )
    if history is not None:
        extra |= _history_hooks(tenant, history, queue_interval_minutes)
        observers = (*observers, *extra.pop("observers"))
    if lease is not None:
        fence = lease.fence

        async def still_ours() -> None:
            await fence.verify(redis)

        extra["before_persist"] = [still_ours, *extra.get("before_persist", [])]
        state_store = state_store or FencedEngineStateStore(
            RedisEngineStateStore(redis, key_prefix=key_prefix), fence, redis
        )
    return make(
        tenant=tenant,
        ruleset=ruleset,
        schedules=schedules or ScheduleStore(redis, key_prefix=key_prefix),
        state_store=state_store or RedisEngineStateStore(redis, key_prefix=key_prefix),
        clock=clock,
        publisher=publisher,
        observers=observers,
        **extra,
    )


def _history_hooks(tenant: str, history: HistoryStore, queue_minutes: int) -> dict[str, Any]:
    """The adherence history and the queue intervals of one tenant, as pipeline hooks."""
    recorder = history.recorder(tenant)
    queues = QueueIntervalRecorder(
        history.redis,
        tenant=tenant,
        tz=history.tenants[tenant],
        width_minutes=queue_minutes,
        key_prefix=history.key_prefix,
        retention=history.retention,
        stream_retention=history.stream_retention,
    )
    return {
        "approvals": ApprovalStore(history),
        "observers": [recorder.record_transitions],
        "accrual_observers": [recorder.record_accruals],
        "before_persist": [recorder.flush],
        "queue_observers": [queues.on_queues],
    }


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
        redis_check_interval: float = REDIS_CHECK_INTERVAL,
    ) -> None:
        self.config = config
        self.redis_check_interval = redis_check_interval
        self.clock: Clock = clock or SystemClock()
        self._own_redis = redis is None
        shared = config.replicas
        self.replica_id = (shared.id or default_replica_id()) if shared.enabled else None
        # a URL or Sentinel; retries a command on a fresh connection after a restart/failover
        self.redis = redis or redis_client(
            config.redis,
            client_name=f"puzzelmon-{self.replica_id}" if self.replica_id else None,
        )
        # RulesError (a ValueError naming file and key) propagates: `run` exits 2 on it
        self.ruleset = ruleset or load_rules(Path(config.rules_path))
        self.key_prefix = key_prefix
        self.schedules = ScheduleStore(self.redis, key_prefix=key_prefix)
        registry = CollectorRegistry(auto_describe=False)
        self._session: aiohttp.ClientSession | None = None
        self.replicas = self._replicas() if self.replica_id else None
        # several replicas: one delivers the outbox at a time, each under its own consumer name
        delivery: dict[str, Any] = (
            {"gate": self.replicas, "consumer": self.replica_id} if self.replicas else {}
        )
        self.alerting = AlertingService(
            config.alerting,
            self.redis,
            clock=self.clock,
            registry=registry,
            console_stream=console_stream,
            key_prefix=key_prefix,
            **delivery,
        )
        tenants = {t.customer_key: ZoneInfo(t.timezone) for t in config.tenants}
        self.history = HistoryStore(
            self.redis,
            tenants=tenants,
            clock=self.clock,
            key_prefix=key_prefix,
            retention=timedelta(seconds=config.history.retention),
            approvals_retention=timedelta(seconds=config.history.approvals_retention),
            stream_retention=timedelta(seconds=config.history.stream_retention),
        )
        self.pipelines = self._pipelines(observers)
        self.redis_guard = RedisGuard(
            self.redis,
            clock=self.clock,
            tenants=[t.customer_key for t in config.tenants],
            schedule_version=self.schedules.version,
            recover=self.recover_from_data_loss,
            publish=self.alerting.outbox.publish,
            key_prefix=key_prefix,
            registry=registry,
        )
        self.service = Service(
            config,
            clock=self.clock,
            sink=self.pipelines,
            engine=self.pipelines,
            routes=[*self._routes(tenants), self._mcp_routes()],
            middlewares=[bearer_middleware(config.api.token)],
            host=host,
            port=port,
            registry=registry,
            poll_all_tenants=self.replicas is None,
        )
        self.service.exporter.readiness_checks.append(self.redis_guard.problems)
        if self.replicas is not None:
            self.service.exporter.ownership = self.replicas.readiness
            self.replicas.register(registry)
        self.mcp = self._mcp() if config.mcp.enabled else None

    def _pipelines(self, observers: tuple[TransitionObserver, ...]) -> PipelineSet:
        """One pipeline per tenant, sharing the schedules, alerting and history (replicas:
        none yet; one is added per tenant this replica acquires)."""
        self._observers = observers
        if self.replicas is not None:
            return PipelineSet(
                on_redis_error=self._redis_error,
                on_fenced=self.replicas.fenced,
                works=self.replicas.works,
            )
        return PipelineSet(
            on_redis_error=self._redis_error,
            pipelines=[self._tenant_pipeline(t.customer_key) for t in self.config.tenants],
        )

    def _tenant_pipeline(self, tenant: str, lease: Lease | None = None) -> TenantPipeline:
        return tenant_pipeline(
            tenant,
            redis=self.redis,
            ruleset=self.ruleset,
            clock=self.clock,
            publisher=self.alerting if lease is None else self.alerting.fenced(lease.fence),
            observers=self._observers,
            key_prefix=self.key_prefix,
            schedules=self.schedules,
            history=self.history,
            queue_interval_minutes=self.config.history.queue_interval_minutes,
            lease=lease,
        )

    def _replicas(self) -> Replicas:
        assert self.replica_id is not None
        cadence = min(t.cadences.user_states for t in self.config.tenants)
        ttl = self.config.replicas.lease_ttl or 2 * cadence
        self.lease_ttl = ttl
        leases = LeaseStore(
            self.redis,
            replica=self.replica_id,
            ttl=timedelta(seconds=ttl),
            clock=self.clock,
            key_prefix=self.key_prefix,
        )
        return Replicas(
            leases,
            [t.customer_key for t in self.config.tenants],
            start_tenant=self._work_tenant,
            stop_tenant=self._leave_tenant,
            abandon_tenant=self._abandon_tenant,
        )

    async def _work_tenant(self, tenant: str, lease: Lease) -> None:
        """Start working a tenant just acquired: its engine state as the last owner saved it,
        then its pollers (due at once)."""
        pipeline = self._tenant_pipeline(tenant, lease)
        await pipeline.start()
        self.pipelines.add(pipeline)
        self.service.add_tenant(self.config.tenant(tenant), pipeline.seed_tracker())

    async def _leave_tenant(self, tenant: str, save: bool) -> None:
        """Stop working a tenant: polls in flight finish (a cycle boundary), then, when handing
        it over (`save`), the engine state is saved for the next owner."""
        await self.service.remove_tenant(tenant)
        pipeline = self.pipelines.remove(tenant)
        if save and pipeline is not None:
            await pipeline.persist()

    def _abandon_tenant(self, tenant: str) -> None:
        self.pipelines.remove(tenant)

    def _routes(self, tenants: dict[str, ZoneInfo]) -> list[list[web.RouteDef]]:
        """The /api/v1 routes: schedules, alerts, Slack users, reports, approvals."""
        history = self.config.history
        return [
            schedule_routes(
                self.schedules, tenants=tenants, known_activities=set(self.ruleset.activities)
            ),
            self.alerting.routes(),
            slack_user_routes(self.alerting.slack_users, tenants=tenants.keys()),
            history_routes(self.history, default_interval=history.interval_minutes),
            approval_routes(self.history),
        ]

    def _mcp_routes(self) -> list[web.RouteDef]:
        """`/mcp` on the monitor's port when MCP is enabled (its own token check, not the API's:
        the bearer middleware guards `/api/` only). Bound late: the endpoint reads the service."""

        async def serve(request: web.Request) -> web.StreamResponse:
            assert self.mcp is not None
            return await self.mcp.bridge.handle(request)

        return [web.route("*", PATH, serve)] if self.config.mcp.enabled else []

    def _mcp(self) -> McpEndpoint:
        """MCP over the live pipelines and pollers (the pollers appear when the service starts)."""
        view = MonitorView(
            live_tenants(self.pipelines, self.service.pollers, self.service.store),
            alerts=self.alerting.outbox.store,
            snoozes=self.alerting.snoozes,
            schedules=self.schedules,
            clock=self.clock,
            history=self.history,
        )
        server, tokens, audit = monitor_server(
            view, self.redis, key_prefix=self.key_prefix, audit_maxlen=self.config.mcp.audit_maxlen
        )
        return McpEndpoint(server, tokens, audit, host=self.service.host)

    def _redis_error(self, error: RedisError) -> None:
        self.redis_guard.mark_down(error)

    async def start(self) -> None:
        try:
            await self.redis.ping()
        except (aioredis.ConnectionError, OSError) as e:
            where = describe_target(self.config.redis)[1]
            raise ServiceError(f"cannot reach Redis at {where}: {explain(e)}") from None
        await self.redis_guard.start()
        await self.pipelines.start()
        for tenant, pipeline in self.pipelines.by_tenant.items():
            self.service.trackers[tenant] = pipeline.seed_tracker()
        await self.alerting.start()
        self.service.scheduler.add(
            "housekeeping",
            self.housekeeping,
            HOUSEKEEPING_INTERVAL,
            first_run_in=5.0,
            max_interval=2 * HOUSEKEEPING_INTERVAL,
        )
        self.service.scheduler.add(
            "redis", self.redis_guard.check, self.redis_check_interval, first_run_in=1.0
        )
        if self.mcp is not None:
            await self.mcp.start()  # before the port opens: no request finds it stopped
        await self.service.start()
        if self.replicas is not None:
            self.service.scheduler.add("ownership", self.replicas.round, self.lease_ttl / 4)

    @property
    def failed(self) -> BaseException | None:
        return self.service.failed

    async def wait_failed(self) -> BaseException | None:
        return await self.service.wait_failed()

    async def housekeeping(self) -> None:
        """Staleness rule per tenant, and a TTL heartbeat in Redis (for external health checks).
        A Redis error is reported as such (`puzzelmon_redis_up`), not as a failed job."""
        try:
            for tenant, pollers in self.service.pollers.items():
                lacking = pollers.unsupported()  # an endpoint the tenant lacks is not stale
                last = {
                    k: h.last_success
                    for k, h in pollers.health.items()
                    if h.last_success and k not in lacking
                }
                pipeline = self.pipelines.by_tenant.get(tenant)
                if pipeline is not None:  # None: handed over meanwhile
                    await pipeline.check_staleness(last)
            await self.redis.set(
                RedisKeys(self.key_prefix).heartbeat(),
                self.clock.now().isoformat(),
                ex=HEARTBEAT_TTL,
            )
        except RedisError as e:
            self.redis_guard.mark_down(e)

    async def recover_from_data_loss(self) -> None:
        """Redis came back empty: rebuild what the monitor holds in memory. Consumer groups
        are created again, the engine's memory is saved again, and every open alert is
        re-announced (records rebuilt; receivers see a redelivery of its first notification)."""
        self.alerting.outbox.groups_lost()
        await self.alerting.outbox.ensure_groups()
        if self.replicas is not None:  # the leases and tokens went too: claim ours back first
            await self.replicas.round()
        await self._persist_all(whole=True)
        open_now = [
            t for p in self.pipelines.by_tenant.values() for t in p.open_transitions.values()
        ]
        written = await self.alerting.reannounce(open_now)
        log.warning("redis.recovered_from_data_loss", open_alerts=len(open_now), written=written)

    async def _persist_all(self, *, whole: bool = False) -> None:
        """Save every pipeline's engine state (one another replica took is skipped)."""
        for pipeline in list(self.pipelines.by_tenant.values()):
            try:
                await pipeline.persist(whole=whole)
            except FencedOut as e:
                if self.replicas is not None:
                    self.replicas.fenced(pipeline.tenant, e)

    async def stop(self, grace: float = 5.0) -> None:
        if self.mcp is not None:
            await self.mcp.stop()
        self.alerting.begin_stop()  # no new deliveries once draining starts
        await self.service.stop(grace=grace)
        with contextlib.suppress(Exception):  # Redis may be the reason we are stopping
            await self._persist_all()
        await self.alerting.stop(grace=grace)
        if self.replicas is not None:
            with contextlib.suppress(Exception):  # else the leases expire on their own
                await self.replicas.stop()
        if self._own_redis:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
