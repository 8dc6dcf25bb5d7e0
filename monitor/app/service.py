"""`puzzel-monitor run`: configuration, Puzzel clients, pollers, exporter and HTTP server.

`Service` holds the running parts and is usable in-process (tests, `demo`): construct it, `await
start()`, `await stop()`. The engine pipeline plugs in through the constructor: `sink` (a
`monitor.ingest.pollers.SnapshotSink`) receives every snapshot after the exporter's store has it,
`engine` (a `monitor.http.metrics.EngineView`) feeds the engine-derived metrics, and `routes` /
`middlewares` are mounted on the HTTP app next to /metrics. `service.exporter.registry` exists
from construction on, for components that register their own metrics. On a `VirtualClock` the
service does not run its scheduler loop: the caller drives `service.scheduler.run_until(end)`.

`monitor.app.run.run_command` is the CLI entry point. Both SIGTERM and SIGINT stop gracefully
(stop scheduling, let polls in flight finish for up to `grace` seconds, cancel the rest, close
the sessions). Exit codes: 0 after SIGTERM, 130 after SIGINT (interrupted, as shells report
Ctrl-C), 2 for a bad configuration (one line naming the key), 3 when the metrics port cannot be
bound or something fatal happens."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.app.config import (
    Config,
    PuzzelIdCredentialsConfig,
    TenantConfig,
)
from monitor.core.clock import Clock, SystemClock
from monitor.core.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME
from monitor.http.metrics import EngineView, Exporter, build_http_app
from monitor.ingest.cadence import Scheduler
from monitor.ingest.pollers import LatestSnapshots, SnapshotSink, TenantPollers
from monitor.ingest.tracker import StateTracker
from monitor.puzzel.auth import PasswordCredentials, PuzzelIdCredentials
from monitor.puzzel.client import PuzzelClient

log = structlog.get_logger("monitor.app.service")

DEFAULT_GRACE = 5.0


class ServiceError(Exception):
    """The service cannot start or keep running (exit code 3)."""


def make_client(
    tenant: TenantConfig, *, session: aiohttp.ClientSession, clock: Clock
) -> PuzzelClient:
    """A Puzzel client for one configured tenant, on the shared session."""
    creds = tenant.credentials
    auth: PuzzelIdCredentials | PasswordCredentials
    if isinstance(creds, PuzzelIdCredentialsConfig):
        auth = PuzzelIdCredentials(
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            customer_key=tenant.customer_key,
            user_id=creds.user_id,
        )
    else:
        auth = PasswordCredentials(
            customer_key=tenant.customer_key,
            user_name=creds.user_name,
            password=creds.password,
        )
    return PuzzelClient(
        auth,
        api_base_url=tenant.api_base_url,
        auth_base_url=tenant.auth_base_url,
        id_base_url=tenant.id_base_url,
        session=session,
        clock=clock,
        timeout=tenant.request_timeout,
        max_rate=tenant.rate_limit.requests_per_second,
        burst=tenant.rate_limit.burst,
        timezone=tenant.timezone,
        endpoints=tenant.endpoints,
    )


def tenant_pollers(
    tenant: TenantConfig,
    *,
    session: aiohttp.ClientSession,
    clock: Clock,
    store: LatestSnapshots,
    sink: SnapshotSink | None = None,
    tracker: StateTracker | None = None,
) -> tuple[PuzzelClient, TenantPollers]:
    """One tenant's client and pollers: the one place they are put together (run, replay,
    the benchmarks)."""
    client = make_client(tenant, session=session, clock=clock)
    return client, TenantPollers(tenant, client, clock, store, sink, tracker=tracker)


class Service:
    """The running monitor: one session, a client and pollers per tenant, the exporter."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        sink: SnapshotSink | None = None,
        engine: EngineView | None = None,
        routes: Iterable[Iterable[web.AbstractRouteDef]] = (),
        middlewares: Sequence[Any] = (),
        host: str | None = None,
        port: int | None = None,
        seed: int | None = None,
        registry: CollectorRegistry | None = None,
        trackers: Mapping[str, StateTracker] | None = None,
        poll_all_tenants: bool = True,
    ) -> None:
        self.config = config
        # False: tenants are polled once added (`add_tenant`: replicas sharing tenants)
        self.poll_all_tenants = poll_all_tenants
        # trackers seeded from persisted engine memory, so durations survive a restart
        self.trackers = dict(trackers or {})
        self.clock: Clock = clock or SystemClock()
        self.sink = sink
        self.store = LatestSnapshots()
        self.scheduler = Scheduler(self.clock, seed=seed)
        self.clients: dict[str, PuzzelClient] = {}
        self.pollers: dict[str, TenantPollers] = {}
        self.exporter = Exporter(
            self.store,
            tenants=lambda: list(self.pollers.values()),
            clients=lambda: dict(self.clients),
            engine=engine,
            per_agent_series=config.exporter.per_agent_series,
            registry=registry,
        )
        self.host = host if host is not None else config.exporter.host
        self.port = port if port is not None else config.exporter.port
        self._routes = [list(r) for r in routes]
        self._middlewares = list(middlewares)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        """Serve HTTP, then start polling. Raises ServiceError if the port cannot be bound."""
        app = build_http_app(self.exporter, routes=self._routes, middlewares=self._middlewares)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            self._runner = None
            raise ServiceError(
                f"cannot listen on {self.host}:{self.port}: {e.strerror or e}"
            ) from None
        self.bound_port = _bound_port(self._runner) or self.port
        self._session = aiohttp.ClientSession()
        for tenant in self.config.tenants if self.poll_all_tenants else ():
            self.add_tenant(tenant)
        if not self.scheduler.virtual:  # on a VirtualClock the caller drives run_until
            self._loop_task = asyncio.get_running_loop().create_task(
                self.scheduler.run_forever(), name="scheduler"
            )
        log.info(
            "started",
            tenants=[t.customer_key for t in self.config.tenants],
            metrics=f"http://{self.host}:{self.bound_port}/metrics",
        )

    def add_tenant(self, tenant: TenantConfig, tracker: StateTracker | None = None) -> None:
        """Start polling one tenant (its first polls are due now)."""
        assert self._session is not None, "add_tenant before start"
        key = tenant.customer_key
        if tracker is not None:
            self.trackers[key] = tracker
        client, pollers = tenant_pollers(
            tenant,
            session=self._session,
            clock=self.clock,
            store=self.store,
            sink=self.sink,
            tracker=self.trackers.get(key),
        )
        pollers.register(self.scheduler)
        self.clients[key] = client
        self.pollers[key] = pollers

    async def remove_tenant(self, key: str, *, grace: float = DEFAULT_GRACE) -> None:
        """Stop polling one tenant: no new polls; those in flight finish (up to `grace`
        seconds), then its snapshots are forgotten, so the exporter no longer shows it."""
        pollers = self.pollers.pop(key, None)
        self.clients.pop(key, None)
        self.trackers.pop(key, None)
        if pollers is not None:
            running = [self.scheduler.remove(pollers.job_name(k)) for k in pollers.kinds()]
            tasks = [t for t in running if t is not None and not t.done()]
            if tasks:
                await asyncio.wait(tasks, timeout=grace)
        self.store.forget(key)

    @property
    def failed(self) -> BaseException | None:
        """The error that ended the scheduler loop, if it died."""
        task = self._loop_task
        if task is None or not task.done() or task.cancelled():
            return None
        return task.exception()

    async def wait_failed(self) -> BaseException | None:
        """Return when the scheduler loop ends (only on a fatal error, or after stop)."""
        if self._loop_task is None:
            return None
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._loop_task)
        return self.failed

    async def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop scheduling, let polls in flight finish for up to `grace` seconds, cancel the
        rest, stop serving and close the HTTP session."""
        self.scheduler.stop()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop_task
            self._loop_task = None
        in_flight = self.scheduler.in_flight
        drained = await self.scheduler.drain(grace)
        if not drained:
            log.info("cancelled polls still running after the grace period", polls=in_flight)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        log.info("stopped")


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None


class Servable(Protocol):
    @property
    def failed(self) -> BaseException | None: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float = DEFAULT_GRACE) -> None: ...

    async def wait_failed(self) -> BaseException | None: ...


async def serve(service: Servable, *, grace: float = DEFAULT_GRACE) -> int:
    """Start `service`, run until SIGTERM/SIGINT or a fatal error, stop it; return the exit code."""
    loop = asyncio.get_running_loop()
    stop = StopSignals(loop)
    try:
        try:
            await service.start()
        except ServiceError as e:
            log.error("cannot start", error=str(e))
            await service.stop(grace=0)
            return EXIT_RUNTIME
        stopper = asyncio.ensure_future(stop.wait())
        failer = asyncio.ensure_future(service.wait_failed())
        await asyncio.wait({stopper, failer}, return_when=asyncio.FIRST_COMPLETED)
        for t in (stopper, failer):
            t.cancel()
        error = service.failed
        if stop.is_set():
            log.info("shutting down", grace_seconds=grace)
        await service.stop(grace=grace)
        if error is not None:
            log.error("fatal error", error=f"{type(error).__name__}: {error}")
            return EXIT_RUNTIME
        return stop.exit_code()
    finally:
        stop.close()


class StopSignals:
    """SIGTERM and SIGINT set one event; which came first decides the exit code (a service
    manager's SIGTERM is a clean stop, 0; Ctrl-C is an interruption, 130)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        self.first: signal.Signals | None = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._received, sig)

    def _received(self, sig: signal.Signals) -> None:
        if self.first is None:
            self.first = sig
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.first == signal.SIGINT else EXIT_OK

    def close(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.remove_signal_handler(sig)
