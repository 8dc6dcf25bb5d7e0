"""A replayed scenario's daily record equals its `expect.adherence` figures (computed by hand in
the scenario files), including a DST day and a night shift crossing local midnight; a second
replay of the same day on the same Redis adds nothing (the watermarks)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.core.clock import SystemClock
from monitor.history.report import ReportQuery, adherence_report
from monitor.history.store import HistoryStore
from monitor.simulator.replay import TOLERANCE_RATIO, run_replay
from monitor.simulator.scenario import Scenario, load_scenario

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
DAYS = {
    "dst_autumn.yaml": "2026-10-25",
    "dst_spring.yaml": None,  # the day its first shift starts, read from the scenario
    "past_midnight.yaml": "2026-03-02",
    "break_overrun.yaml": None,
}


def _shift_day(sc: Scenario) -> str:
    first = min(s.start for a in sc.agents for s in a.segments)
    return first.astimezone(sc.timezone).date().isoformat()


async def _report(redis: aioredis.Redis, sc: Scenario, day: str) -> dict[str, dict[str, object]]:
    store = HistoryStore(redis, tenants={sc.customer_key: sc.timezone}, clock=SystemClock())
    d = date.fromisoformat(day)
    report = await adherence_report(store, ReportQuery(sc.customer_key, d, d))
    return {r["agent"]: r for r in report["agents"]}


@pytest.mark.parametrize("name", sorted(DAYS))
async def test_daily_record_equals_expected_adherence(
    name: str, redis_client: aioredis.Redis
) -> None:
    """The record of the shift's day has the replay's own figures and the scenario's expected
    ones; the night shift's time after midnight is on the day it started."""
    sc = load_scenario(SCENARIO_DIR / name)
    assert sc.expect is not None
    day = DAYS[name] or _shift_day(sc)
    result = await run_replay(sc, redis=redis_client)
    rows = await _report(redis_client, sc, day)
    replayed = {r.agent: r for r in result.adherence}
    for agent, expected in sc.expect.adherence.items():
        row = rows[agent]
        assert row["scheduled_seconds"] == pytest.approx(replayed[agent].scheduled_seconds)
        assert row["adherence"] == pytest.approx(replayed[agent].adherence, abs=1e-9)
        assert abs(float(row["adherence"]) - expected.adherence) <= TOLERANCE_RATIO  # type: ignore[arg-type]
        if expected.conformance is not None:
            assert row["conformance"] == pytest.approx(replayed[agent].conformance, abs=1e-9)
            assert abs(float(row["conformance"]) - expected.conformance) <= TOLERANCE_RATIO  # type: ignore[arg-type]


async def test_a_second_replay_adds_nothing(redis_client: aioredis.Redis) -> None:
    """Replaying the same day again (a fresh engine, the same history) leaves the record as it
    was: time before an agent's watermark is on file already."""
    sc = load_scenario(SCENARIO_DIR / "past_midnight.yaml")
    await run_replay(sc, redis=redis_client, key_prefix="first")
    before = await _report(redis_client, sc, "2026-03-02")
    await run_replay(sc, redis=redis_client, key_prefix="second")
    after = await _report(redis_client, sc, "2026-03-02")
    assert before == after
    assert before["1901"]["scheduled_seconds"] == 28_800
    assert not await _report(redis_client, sc, "2026-03-03")


async def test_a_restart_mid_shift_counts_nothing_twice(redis_client: aioredis.Redis) -> None:
    """A monitor stopped mid-shift (after the midnight of a night shift) and started again from
    its saved engine state, which is older than what the history has on file, ends with the
    same record as a replay without the restart."""
    sc = load_scenario(SCENARIO_DIR / "past_midnight.yaml")
    whole = await run_replay(sc, redis=redis_client, key_prefix="whole", history_prefix="h1")
    stop = sc.start + (sc.end - sc.start) * 0.7
    await run_replay(sc, redis=redis_client, key_prefix="cut", history_prefix="h2", stop_at=stop)
    await run_replay(sc, redis=redis_client, key_prefix="cut", history_prefix="h2")
    tz = {sc.customer_key: sc.timezone}
    day = date(2026, 3, 2)
    reports = [
        await adherence_report(
            HistoryStore(redis_client, tenants=tz, clock=SystemClock(), key_prefix=p),
            ReportQuery(sc.customer_key, day, day),
        )
        for p in ("h1", "h2")
    ]
    assert reports[0]["agents"] == reports[1]["agents"]
    assert reports[0]["intervals"] == reports[1]["intervals"]
    (row,) = reports[1]["agents"]
    assert row["adherence"] == pytest.approx(whole.adherence[0].adherence, abs=1e-9)
