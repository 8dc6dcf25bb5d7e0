"""Alert delivery assembled from `AlertingConfig`: outbox, sinks, dispatcher, re-senders, API."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.alerts.api import alert_routes
from monitor.alerts.config import (
    AlertingConfig,
    AlertmanagerSinkConfig,
    ConsoleSinkConfig,
    SinkConfig,
    SlackDmSinkConfig,
    SlackSinkConfig,
    TeamsSinkConfig,
    WebhookSinkConfig,
)
from monitor.alerts.metrics import AlertMetrics
from monitor.alerts.model import alert_from_transition
from monitor.alerts.outbox import Background, Dispatcher, Outbox
from monitor.alerts.routing import Router
from monitor.alerts.sinks.alertmanager import AlertmanagerResender, AlertmanagerSink
from monitor.alerts.sinks.base import Sink
from monitor.alerts.sinks.console import ConsoleSink
from monitor.alerts.sinks.slack import SlackSink
from monitor.alerts.sinks.slack_dm import SlackDmSink
from monitor.alerts.sinks.teams import TeamsSink
from monitor.alerts.sinks.webhook import WebhookSink
from monitor.alerts.slack_users import SlackUserStore
from monitor.alerts.snooze import SnoozeStore
from monitor.core.clock import Clock
from monitor.engine.model import AlertTransition
from monitor.pipeline.leases import Fence


def build_sink(
    name: str,
    config: SinkConfig,
    *,
    clock: Clock,
    session: aiohttp.ClientSession | None,
    console_stream: TextIO | None = None,
    external_url: str = "",
    users: SlackUserStore | None = None,
    dropped: Callable[[str], None] | None = None,
) -> Sink:
    if isinstance(config, ConsoleSinkConfig):
        return ConsoleSink(console_stream)
    if isinstance(config, TeamsSinkConfig):
        return TeamsSink(
            config.webhook_url,
            clock=clock,
            session=session,
            timeout=config.timeout.total_seconds(),
            min_interval=config.min_interval.total_seconds(),
            max_alerts=config.max_alerts,
        )
    if isinstance(config, SlackDmSinkConfig):
        if users is None:
            raise ValueError(f"sink {name!r}: a Slack DM sink needs the Slack user mapping")
        return _slack_dm(config, users, clock=clock, session=session, dropped=dropped)
    if isinstance(config, SlackSinkConfig):
        return SlackSink(
            config.webhook_url,
            clock=clock,
            session=session,
            timeout=config.timeout.total_seconds(),
            min_interval=config.min_interval.total_seconds(),
        )
    if isinstance(config, WebhookSinkConfig):
        return WebhookSink(
            config.url,
            clock=clock,
            receiver=name,
            hmac_key=config.hmac_key,
            session=session,
            timeout=config.timeout.total_seconds(),
            max_alerts=config.max_alerts,
            external_url=external_url,
        )
    return AlertmanagerSink(
        config.url,
        session=session,
        bearer_token=config.bearer_token,
        timeout=config.timeout.total_seconds(),
    )


def _slack_dm(
    config: SlackDmSinkConfig,
    users: SlackUserStore,
    *,
    clock: Clock,
    session: aiohttp.ClientSession | None,
    dropped: Callable[[str], None] | None,
) -> SlackDmSink:
    return SlackDmSink(
        config.bot_token,
        users,
        clock=clock,
        api_url=config.api_url,
        session=session,
        timeout=config.timeout.total_seconds(),
        min_interval=config.min_interval.total_seconds(),
        email_cache_ttl=config.email_cache_ttl.total_seconds(),
        unresolved_retry=config.unresolved_retry.total_seconds(),
        dropped=dropped,
    )


class AlertingService:
    """Everything between engine transitions and people. `publish_transitions` is the
    pipeline's `AlertPublisher`; `start`/`stop` run the delivery tasks; `routes()` the API."""

    def __init__(
        self,
        config: AlertingConfig,
        redis: aioredis.Redis,
        *,
        clock: Clock,
        registry: CollectorRegistry | None = None,
        session: aiohttp.ClientSession | None = None,
        console_stream: TextIO | None = None,
        key_prefix: str = "pzm",
        **worker_options: Any,
    ) -> None:
        self.config = config
        self.clock = clock
        self.snoozes = SnoozeStore(redis, clock=clock, key_prefix=key_prefix)
        self.router = Router.from_config(config)
        self.outbox = Outbox(
            redis,
            sinks=list(config.sinks),
            clock=clock,
            key_prefix=key_prefix,
            router=self.router,
            snoozes=self.snoozes,
            dashboard_url=config.dashboard_url,
        )
        self.metrics = AlertMetrics(registry) if registry is not None else None
        self.slack_users = SlackUserStore(redis, key_prefix=key_prefix)
        self.sinks: dict[str, Sink] = {
            name: build_sink(
                name,
                cfg,
                clock=clock,
                session=session,
                console_stream=console_stream,
                external_url=config.dashboard_url or "",
                users=self.slack_users,
                dropped=functools.partial(self._dropped, name),
            )
            for name, cfg in config.sinks.items()
        }
        background: list[Background] = []
        for name, cfg in config.sinks.items():
            sink = self.sinks[name]
            if isinstance(cfg, AlertmanagerSinkConfig) and isinstance(sink, AlertmanagerSink):
                resender = AlertmanagerResender(
                    sink,
                    self.outbox.store,
                    clock=clock,
                    resend_interval=cfg.resend_interval,
                    resolved_for=cfg.resolved_resend_for,
                    backing_off=functools.partial(self._backing_off, name),
                )
                background.append(resender.run)
        worker_options.setdefault("group_wait", config.group_wait)
        worker_options.setdefault("max_age", config.retry_max_age)
        worker_options.setdefault("idempotency_ttl", config.idempotency_ttl)
        self.dispatcher = Dispatcher(
            self.outbox,
            self.sinks,
            clock=clock,
            metrics=self.metrics,
            snoozes=self.snoozes,
            background=background,
            **worker_options,
        )

    def _dropped(self, sink: str, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.dropped.labels(sink=sink, reason=reason).inc()

    def _backing_off(self, sink: str) -> bool:
        """Skip a round of re-sends: the sink is backing off, or another replica delivers."""
        gate = self.dispatcher.gate
        if gate is not None and gate.fence is None:
            return True
        worker = self.dispatcher.workers.get(sink)
        return worker is not None and worker.breaker.wait_time() > 0

    async def publish_transitions(
        self, transitions: Sequence[AlertTransition], *, fence: Fence | None = None
    ) -> None:
        await self.outbox.publish_transitions(transitions, fence=fence)

    def fenced(self, fence: Fence) -> FencedPublisher:
        """The `AlertPublisher` of one tenant worked under a lease: its writes check `fence`."""
        return FencedPublisher(self, fence)

    async def reannounce(self, transitions: Sequence[AlertTransition]) -> int:
        """Publish open alerts again after Redis lost its data (see `Outbox.reannounce`)."""
        alerts = [
            alert_from_transition(t, dashboard_url=self.config.dashboard_url) for t in transitions
        ]
        return await self.outbox.reannounce(alerts, [t.ideal_at for t in transitions])

    def begin_stop(self) -> None:
        """No new deliveries from now on; requests in flight finish (see `stop`)."""
        self.dispatcher.begin_stop()

    async def start(self) -> None:
        await self.dispatcher.start()

    async def stop(self, grace: float = 5.0) -> None:
        await self.dispatcher.stop(grace)
        for sink in self.sinks.values():
            close = getattr(sink, "close", None)
            if close is not None:
                await close()

    def routes(self) -> list[web.RouteDef]:
        return alert_routes(self.outbox.store, self.snoozes, clock=self.clock)


class FencedPublisher:
    """An `AlertPublisher` whose every write is fenced by one tenant's lease."""

    def __init__(self, alerting: AlertingService, fence: Fence) -> None:
        self.alerting = alerting
        self.fence = fence

    async def publish_transitions(self, transitions: Sequence[AlertTransition]) -> None:
        await self.alerting.publish_transitions(transitions, fence=self.fence)
