"""The per-sink backoff: Retry-After in both forms, caps, jitter bounds, and the metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts.metrics import AlertMetrics
from monitor.alerts.outbox import BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN, SinkBreaker
from monitor.alerts.sinks.base import SinkError, classify_http, parse_retry_after
from monitor.core.clock import VirtualClock

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("10") == (10.0, None)
    assert parse_retry_after("Mon, 02 Mar 2026 09:00:30 GMT") == (None, NOW + timedelta(seconds=30))
    assert parse_retry_after("soon") == (None, None)
    assert parse_retry_after(None) == (None, None)


@pytest.mark.parametrize(
    ("status", "permanent", "honours"),
    [(429, False, True), (503, False, True), (500, False, False), (408, False, False),
     (400, True, False), (404, True, False)],
)  # fmt: skip
def test_classify_http(status: int, permanent: bool, honours: bool) -> None:
    err = classify_http(status, "7", "sink")
    assert err.permanent is permanent
    assert (err.wait_seconds(NOW) == 7.0) is honours


def breaker(clock: VirtualClock, registry: CollectorRegistry | None = None) -> SinkBreaker:
    metrics = AlertMetrics(registry) if registry is not None else None
    if metrics is not None:
        metrics.init_sink("s")
    return SinkBreaker("s", clock, base=1.0, cap=60.0, retry_after_cap=3600.0, metrics=metrics)


def test_backoff_doubles_within_jitter_up_to_the_cap() -> None:
    b = breaker(VirtualClock(NOW))
    delays = [b.failed(SinkError("HTTP 500")) for _ in range(10)]
    for n, delay in enumerate(delays):
        own = min(60.0, 2.0**n)
        assert 0.8 * own <= delay <= own
    assert max(delays) <= 60.0


def test_retry_after_is_honoured_with_a_floor_and_a_cap() -> None:
    clock = VirtualClock(NOW)
    b = breaker(clock)
    assert 10.0 <= b.failed(SinkError("429", retry_after=10)) <= 11.0
    assert 1.0 <= b.failed(SinkError("429", retry_after=0)) <= 1.1  # never a busy loop
    assert b.failed(SinkError("429", retry_after=10**6)) <= 3600.0 * 1.1
    at = NOW + timedelta(seconds=90)
    assert 90.0 <= b.failed(SinkError("503", retry_at=at)) <= 99.0


def test_wait_time_counts_down_and_success_closes() -> None:
    clock = VirtualClock(NOW)
    registry = CollectorRegistry()
    b = breaker(clock, registry)

    def state() -> float | None:
        return registry.get_sample_value("puzzelmon_sink_breaker_state", {"sink": "s"})

    assert state() == BREAKER_CLOSED
    delay = b.failed(SinkError("429", retry_after=30))
    assert state() == BREAKER_OPEN
    assert b.wait_time() == pytest.approx(delay)
    clock.advance(delay / 2)
    assert b.wait_time() == pytest.approx(delay / 2)
    clock.advance(delay)
    assert b.wait_time() == 0
    b.attempting()
    assert state() == BREAKER_HALF_OPEN
    b.succeeded()
    assert state() == BREAKER_CLOSED
    assert b.failures == 0
