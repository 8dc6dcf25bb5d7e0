"""Delivery metrics (names fixed by docs/metrics.md), registered on an injected registry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass(frozen=True, slots=True)
class SinkBacklog:
    pending: int
    oldest_age_seconds: float


class OutboxCollector(Collector):
    """Exports the last outbox snapshot (refreshed by the dispatcher, not at scrape time)."""

    def __init__(self) -> None:
        self.snapshot: Mapping[str, SinkBacklog] = {}

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pending = GaugeMetricFamily(
            "puzzelmon_outbox_pending",
            "Notifications written but not yet delivered (refreshed by the dispatcher).",
            labels=["sink"],
        )
        oldest = GaugeMetricFamily(
            "puzzelmon_outbox_oldest_age_seconds",
            "Age of the oldest undelivered notification (refreshed by the dispatcher).",
            labels=["sink"],
        )
        for sink, backlog in sorted(self.snapshot.items()):
            pending.add_metric([sink], backlog.pending)
            oldest.add_metric([sink], backlog.oldest_age_seconds)
        yield pending
        yield oldest


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "puzzelmon_notifications",
            "Notifications delivered (one per alert in a delivered message).",
            ["sink"],
            registry=registry,
        )
        self.failures = Counter(
            "puzzelmon_notification_failures",
            "Delivery attempts that failed.",
            ["sink"],
            registry=registry,
        )
        self.retries = Counter(
            "puzzelmon_notification_retries",
            "Delivery retries.",
            ["sink"],
            registry=registry,
        )
        self.dropped = Counter(
            "puzzelmon_notifications_dropped",
            "Notifications a sink could not address and dropped on purpose, by reason "
            "(Slack DMs: unmapped agent, e-mail unknown to Slack).",
            ["sink", "reason"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "puzzelmon_sink_breaker_state",
            "Per sink: 0 delivering normally, 1 failing and waiting out its backoff, "
            "2 trying again after a failure.",
            ["sink"],
            registry=registry,
        )
        self.outbox = OutboxCollector()
        registry.register(self.outbox)

    def init_sink(self, sink: str) -> None:
        """Create the series at zero so rates work from the first scrape."""
        self.notifications.labels(sink=sink)
        self.failures.labels(sink=sink)
        self.retries.labels(sink=sink)
        self.breaker_state.labels(sink=sink).set(0)
