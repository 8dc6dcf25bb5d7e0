"""Smoke tests of the benchmark suite: each benchmark runs at a tiny size and gives sane figures.
No timing is asserted; only structure and sanity."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.redis_server import RedisServer


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    from monitor.app.logging import configure_logging

    configure_logging("warning", "console")


async def test_cycle_measures_every_stage_and_the_floor(redis_server: RedisServer) -> None:
    """The cycle benchmark reports a positive floor, every stage, and a ratio above 1."""
    from bench import cycle

    result = await cycle.run(
        sizes=[(60, 4)], cycles=2, repeats=1, redis_url=redis_server.url, profile=True
    )
    data = result.data["60"]
    assert data["agents"] == 60
    assert data["floor_cpu"] > 0
    assert set(data["stages"]) == set(cycle.STAGES)
    assert data["full_cpu"] >= data["poll_cpu"]
    assert data["ratio"] > 1
    assert data["series_on"] > data["series_off"] > 0
    assert data["profile_top"], "the profile summary is empty"
    assert result.figures[0].ratio_of == "orjson floor"


async def test_economy_counts_requests_from_the_simulator_log() -> None:
    """The request economy benchmark counts group calls per minute and beats a per-agent poller."""
    from bench import economy

    result = await economy.run(sizes=[(100, 4)], minutes=0.5)
    m = result.data["100"]
    groups = int(m["groups"])
    by = m["by_endpoint_per_minute"]
    assert by["user_group_state_information"] == pytest.approx(groups * 12)
    assert m["failures"] == 0
    assert m["per_agent_poller_per_minute"] == 100 * 12
    assert m["saving_ratio"] > 1


async def test_scrape_renders_with_and_without_per_agent_series(redis_server: RedisServer) -> None:
    """The scrape benchmark renders more series with per-agent series on, and the memory child
    reports RSS samples."""
    from bench import scrape

    result = await scrape.run(
        sizes=[(60, 4)], memory_agents=40, memory_cycles=4, redis_url=redis_server.url
    )
    render = result.data["render_60"]
    assert render["on"]["series"] > render["off"]["series"]
    assert render["on"]["bytes"] > render["off"]["bytes"]
    mem = result.data["memory"]
    assert mem["cycles"] == 4
    assert mem["rss_end"] >= mem["rss_baseline"] > 0


async def test_scale_finds_a_positive_number_of_agents_and_tenants(
    redis_server: RedisServer,
) -> None:
    """The scale benchmark probes sizes and reports how many agents and tenants fit."""
    from bench import scale

    result = await scale.run(
        redis_url=redis_server.url,
        cycles=1,
        steps=0,
        tenant_agents=40,
        hint=(40, 0.5),
        agents_cap=80,
        tenants_cap=2,
    )
    assert result.data["agents_probes"]
    assert all(cost > 0 for _, cost in result.data["agents_probes"])
    assert result.figures[0].value is not None
    assert result.figures[0].value > 0
    assert result.data["tenant_probes"][0][0] == 1


async def test_latency_delivers_every_incident_to_the_receiver(redis_server: RedisServer) -> None:
    """Two incidents reach the webhook receiver through the monitor route (Prometheus skipped)."""
    from bench import latency

    m = await latency.measure(
        redis_url=redis_server.url,
        incidents=2,
        spacing=1.0,
        after=1.0,
        hold=8.0,
        with_prometheus=False,
        lead=2.0,
    )
    assert m["prometheus_skipped"] == "not asked for"
    assert m["monitor"]["received"] == 2
    assert m["monitor"]["missing"] == 0
    assert m["monitor"]["min"] > -1.0  # an alert cannot arrive (much) before its ideal time


def test_prometheus_binaries_are_reported_when_missing() -> None:
    """The Prometheus route is skipped with a reason exactly when a binary is missing."""
    from bench import latency

    missing = latency.prometheus_missing()
    both = shutil.which("prometheus") and shutil.which("prometheus-alertmanager")
    assert (missing is None) == bool(both)


def test_replay_checks_the_day_and_generates_larger_ones(tmp_path: Path) -> None:
    """The replay benchmark runs the committed day with --check (exact) and can generate the
    same day with more agents."""
    from bench import replay
    from monitor.simulator.scenario import load_scenario

    result = replay.run(sizes=[50], out_dir=tmp_path)
    run = result.data["50"]
    assert run["exact"] is True, run["tail"]
    assert run["wall"] > 0
    assert run["cpu"] > 0
    bigger = replay.day_file(60, tmp_path)
    scenario = load_scenario(bigger)
    assert len(scenario.agents) == 60
    assert scenario.expect is not None
    assert len(scenario.expect.adherence) > 50


async def test_history_report_reads_back_every_seeded_agent_day(redis_server: RedisServer) -> None:
    """The report benchmark seeds through the recorder and every path reads all of it back."""
    from bench import history

    url = redis_server.url.rsplit("/", 1)[0] + "/5"
    result = await history.run(redis_url=url, agents=40, days=3, repeats=1)
    assert result.data["rows"] == 40 * 3
    assert result.data["cli_bytes"] > 0
    assert set(result.data["http"]) == {"json", "csv"}
    names = [f.name for f in result.figures]
    assert any("CLI" in n for n in names)
    assert all(f.value is not None and f.value > 0 for f in result.figures)
