"""`simulate --scenario FILE --start-now --schedules-redis URL`: a scenario played on the wall
clock with its schedules loaded, so `run` raises its schedule-based alerts (issue 15)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.app.config import Config
from monitor.app.wiring import Monitor
from monitor.core.clock import SystemClock
from monitor.rules.loader import ruleset_from_mapping
from monitor.schedules.store import ScheduleStore
from monitor.simulator.publish import started_now
from monitor.simulator.scenario import load_scenario
from monitor.simulator.simulator import Simulator
from tests.redis_server import RedisServer, free_port
from tests.simserver import tenant_dict

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """\
name: Never logs in
tenant: {customer_key: "12345", timezone: Europe/Oslo}
start: 2026-03-02T07:59:52
end: 2026-03-02T12:00:00
agents:
  - id: 1002
    name: Lars Berg
    group: Sales
    schedule:
      - [08:00, 12:00, phone]
    states:
      - [11:00, available]
"""


def test_started_now_keeps_every_distance_to_the_start(tmp_path: Path) -> None:
    """The moved scenario starts at the next whole second; segments and states move with it."""
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    original = load_scenario(path)
    now = datetime(2026, 12, 1, 15, 41, 7, 250_000, tzinfo=UTC)
    moved = started_now(original, now)
    assert moved.start == datetime(2026, 12, 1, 15, 41, 8, tzinfo=UTC)
    assert moved.agents[0].segments[0].start == moved.start + timedelta(seconds=8)
    delta = moved.start - original.start
    (a,), (b,) = original.agents, moved.agents
    assert [(s.start + delta, s.end + delta) for s in a.segments] == [
        (s.start, s.end) for s in b.segments
    ]
    assert [t + delta for t, _ in a.states] == [t for t, _ in b.states]
    assert moved.end - moved.start == original.end - original.start
    assert moved.expect is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start-now"], "play a --scenario"),
        (["--scenario", "SCENARIO", "--start-now", "--speed", "10"], "leave --speed at 1"),
    ],
)
def test_start_now_needs_a_scenario_in_real_time(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """--start-now without a scenario, or faster than real time, exits 2 saying why."""
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    argv = [str(path) if a == "SCENARIO" else a for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "simulate", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr


async def test_run_raises_the_scenarios_schedule_alert_on_the_wall_clock(
    tmp_path: Path, redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    """The simulator moves the scenario to now and loads its schedule into Redis; a monitor on
    the system clock then sees agent 1002 scheduled for phone from 8 s in, but logged off:
    late_login fires (the scenario as written, in 2026-03, would never overlap `run`'s now)."""
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "simulate", "--scenario", str(path), "--start-now",
        "--schedules-redis", redis_server.url, "--port", str(port),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    console = io.StringIO()
    monitor: Monitor | None = None
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "loaded into" in first, first
        # the banner follows; the server listens once it is printed
        while (
            "serving until Ctrl-C"
            not in (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        ):
            pass
        tz = load_scenario(path).timezone
        today = datetime.now(UTC).astimezone(tz).date()
        day = await ScheduleStore(redis_client).agent_day("12345", tz, "1002", today)
        assert [s.activity for s in day] == ["phone"]
        # the shift starts 8 s after the scenario, which started when the simulator did
        assert abs(day[0].start - datetime.now(UTC)) < timedelta(seconds=30)

        creds = Simulator.from_scenario(load_scenario(path))
        tenant = tenant_dict(creds, f"http://127.0.0.1:{port}", cadences={"user_states": "1s"})
        config = Config.model_validate(
            {"tenants": [tenant], "exporter": {"host": "127.0.0.1", "port": 0}}
        )
        monitor = Monitor(
            config,
            clock=SystemClock(),
            redis=aioredis.Redis.from_url(redis_server.url),
            ruleset=ruleset_from_mapping({"late_login": {"after": "0s"}}),
            console_stream=console,
            port=0,
        )
        await monitor.start()
        deadline = time.monotonic() + 30
        while "late_login" not in console.getvalue():
            assert time.monotonic() < deadline, console.getvalue()
            await asyncio.sleep(0.2)
        assert "1002" in console.getvalue()
    finally:
        if monitor is not None:
            await monitor.stop(grace=1)
            await monitor.redis.aclose()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
