"""Issue 15's metric changes: `puzzelmon_agent_info` carries names for joins, queue exceptions
have a start-time series, and counters have no undocumented `*_created` series."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import enable_created_metrics, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerts.metrics import AlertMetrics
from monitor.http.metrics import Exporter
from tests.http.test_metrics import T0, TENANT, engine_view, filled_store, make_exporter


def info_series(exporter: Exporter) -> dict[str, dict[str, str]]:
    text = generate_latest(exporter.registry).decode()
    return {
        s.labels["agent_id"]: s.labels
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "puzzelmon_agent_info" and s.value == 1.0
    }


def test_agent_info_names_every_agent_of_the_poll() -> None:
    """One `puzzelmon_agent_info` series per agent, logged-off agents included, with team and
    name labels, value 1."""
    exporter, _ = make_exporter(filled_store())
    info = info_series(exporter)
    assert sorted(info) == ["1", "2", "3", "4", "5"]
    assert info["4"] == {"tenant": TENANT, "team": "Support", "agent_id": "4", "name": "A 4"}
    assert info["5"]["team"] == "Sales"


def test_agent_info_is_off_with_per_agent_series() -> None:
    """`exporter.per_agent_series: false` drops the names with the other per-agent series."""
    exporter, _ = make_exporter(filled_store(), per_agent=False)
    assert info_series(exporter) == {}


def test_no_created_series_even_for_the_delivery_counters() -> None:
    """The alert delivery counters registered on the exporter's registry expose `_total` only,
    in both exposition formats, however the process had the library's switch set before."""
    enable_created_metrics()  # as a fresh process has it
    exporter, _ = make_exporter(filled_store())
    AlertMetrics(exporter.registry).init_sink("console")
    text = generate_latest(exporter.registry).decode()
    openmetrics = generate_openmetrics(exporter.registry).decode()  # type: ignore[no-untyped-call]  # untyped upstream
    assert "puzzelmon_notifications_total" in text
    assert "_created" not in text
    assert "_created" not in openmetrics


@pytest.mark.parametrize("per_agent", [True, False])
def test_queue_exceptions_have_their_own_start_series(per_agent: bool) -> None:
    """An open queue exception is exported with its queue and rule and the time its condition
    began, with or without per-agent series (the current-exceptions table lists queues too)."""
    exporter, _ = make_exporter(filled_store(), engine=engine_view(), per_agent=per_agent)
    text = generate_latest(exporter.registry).decode()
    samples = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "puzzelmon_queue_exception_started_timestamp_seconds"
    ]
    assert [(s.labels, s.value) for s in samples] == [
        (
            {"tenant": TENANT, "queue": "4101", "rule": "queue_wait_above"},
            (T0 - timedelta(minutes=10)).timestamp(),
        )
    ]
