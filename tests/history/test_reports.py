"""The adherence report over HTTP (JSON and CSV, behind the bearer token, 400 naming a bad
parameter) and on the command line (`report adherence`, exit 2 naming a bad parameter), read
from a replayed scenario's history."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from monitor.core.clock import SystemClock
from monitor.history.api import history_routes
from monitor.history.store import HistoryStore
from monitor.http.auth import bearer_middleware
from monitor.simulator.replay import run_replay
from monitor.simulator.scenario import load_scenario
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "scenarios" / "break_overrun.yaml"
TOKEN = "report-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
URL = "/api/v1/reports/adherence"

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, redis_client: aioredis.Redis
) -> TestClient[Any, Any]:
    sc = load_scenario(SCENARIO)
    await run_replay(sc, redis=redis_client)
    store = HistoryStore(redis_client, tenants={sc.customer_key: sc.timezone}, clock=SystemClock())
    app = web.Application(middlewares=[bearer_middleware(SecretStr(TOKEN))])
    app.add_routes(history_routes(store))
    return await aiohttp_client(app)


def _day() -> str:
    sc = load_scenario(SCENARIO)
    return sc.start.astimezone(sc.timezone).date().isoformat()


async def test_json_report_has_the_agent_day_team_intervals_and_exceptions(
    client: TestClient[Any, Any],
) -> None:
    """The example scenario of scenario-format.md: 570 of 14,400 s out; both alerts listed."""
    day = _day()
    resp = await client.get(URL, params={"tenant": "12345", "from": day, "to": day}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    (row,) = body["agents"]
    assert (row["agent"], row["team"]) == ("1001", "Support")
    assert (row["scheduled_seconds"], row["adherent_seconds"]) == (14_400, 14_400 - 570)
    (team,) = body["teams"]
    assert team["adherent_seconds"] == row["adherent_seconds"]
    # the 15-minute team intervals add up to the day; 10:15-10:30 holds 540 s of the 570 s out
    assert sum(i["scheduled_seconds"] for i in body["intervals"]) == 14_400
    by_start = {i["start"][11:16]: i for i in body["intervals"]}
    assert by_start["10:15"]["scheduled_seconds"] - by_start["10:15"]["adherent_seconds"] == 540
    rules = sorted((e["rule"], e["end"][11:19]) for e in body["exceptions"])
    assert rules == [("break_overrun", "10:24:00"), ("out_of_adherence", "10:24:00")]


async def test_csv_when_asked_and_30_minute_intervals(client: TestClient[Any, Any]) -> None:
    """`Accept: text/csv` and `format=csv` give the same CSV; a 30-minute interval is its two
    quarter hours."""
    day = _day()
    params = {"tenant": "12345", "from": day, "to": day}
    a = await client.get(URL, params=params, headers=AUTH | {"Accept": "text/csv"})
    b = await client.get(URL, params=params | {"format": "csv"}, headers=AUTH)
    assert a.headers["Content-Type"].startswith("text/csv")
    text = await a.text()
    assert text == await b.text()
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert (row["agent"], row["adherence"], row["exceptions"]) == ("1001", "0.9604", "2")
    q15 = await (await client.get(URL, params=params, headers=AUTH)).json()
    q30 = await (await client.get(URL, params=params | {"interval": "30"}, headers=AUTH)).json()
    by15 = {i["start"][11:16]: i for i in q15["intervals"]}
    by30 = {i["start"][11:16]: i for i in q30["intervals"]}
    assert all(k[3:] in ("00", "30") for k in by30)
    for metric in ("scheduled_seconds", "adherent_seconds", "productive_seconds"):
        assert by30["10:00"][metric] == by15["10:00"][metric] + by15["10:15"][metric]
        assert sum(i[metric] for i in by30.values()) == sum(i[metric] for i in by15.values())


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"tenant": "nope", "from": "2026-03-02", "to": "2026-03-02"}, "tenant='nope'"),
        ({"tenant": "12345", "from": "2026-02-30", "to": "2026-03-02"}, "from='2026-02-30'"),
        ({"tenant": "12345", "from": "2026-03-02"}, "to=None"),
        ({"tenant": "12345", "from": "2026-03-02", "to": "2026-03-01"}, "to='2026-03-01'"),
        (
            {"tenant": "12345", "from": "2026-03-02", "to": "2026-03-02", "interval": "20"},
            "interval='20'",
        ),
        (
            {"tenant": "12345", "from": "2026-03-02", "to": "2026-03-02", "format": "xml"},
            "format='xml'",
        ),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    client: TestClient[Any, Any], params: dict[str, str], named: str
) -> None:
    resp = await client.get(URL, params=params, headers=AUTH)
    assert resp.status == 400
    assert named in (await resp.json())["error"]


async def test_the_report_needs_the_token(client: TestClient[Any, Any]) -> None:
    resp = await client.get(
        URL, params={"tenant": "12345", "from": "2026-03-02", "to": "2026-03-02"}
    )
    assert resp.status == 401


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "report", "adherence", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip


def _replay_into(url: str) -> None:
    async def go() -> None:
        redis = aioredis.Redis.from_url(url)
        await redis.flushdb()
        await run_replay(load_scenario(SCENARIO), redis=redis)
        await redis.aclose()

    asyncio.run(go())


def test_cli_prints_the_same_csv_and_exits_2_on_a_bad_date(redis_server: RedisServer) -> None:
    """`report adherence --redis-url` reads a replayed day with no configuration (the time
    zone is the one the history stored); a bad date exits 2 naming --from and the value."""
    if redis_server.proc is None:
        redis_server.start()
    _replay_into(redis_server.url)
    day = _day()
    ok = _cli("--tenant", "12345", "--from", day, "--to", day, "--redis-url", redis_server.url)
    assert ok.returncode == 0, ok.stderr
    (row,) = list(csv.DictReader(io.StringIO(ok.stdout)))
    assert (row["date"], row["agent"], row["scheduled_seconds"]) == (day, "1001", "14400")
    bad = _cli(
        "--tenant", "12345", "--from", "yesterday", "--to", day, "--redis-url", redis_server.url
    )
    assert bad.returncode == 2
    assert "--from='yesterday'" in bad.stderr


def test_cli_approves_and_withdraws_with_the_report_following(redis_server: RedisServer) -> None:
    """`approvals add` excuses the 540 s paused during `phone` (the report's approved seconds
    and adherence follow); `approvals withdraw` restores them; a bad time exits 2 naming it."""
    if redis_server.proc is None:
        redis_server.start()
    _replay_into(redis_server.url)
    day, url = _day(), redis_server.url
    common = ("--tenant", "12345", "--by", "ana", "--redis-url", url)

    def approved() -> tuple[str, str]:
        out = _cli("--tenant", "12345", "--from", day, "--to", day, "--redis-url", url)
        (row,) = list(csv.DictReader(io.StringIO(out.stdout)))
        return row["approved_seconds"], row["approved_adherence"]

    def approvals(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "monitor", "approvals", *args, *common],
            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        )  # fmt: skip

    assert approved() == ("0", "0.9604")
    times = ("--start", f"{day}T10:15:00", "--end", f"{day}T10:24:00")
    added = approvals("add", "--agent", "1001", *times, "--reason", "team meeting")
    assert added.returncode == 0, added.stderr
    assert approved() == ("540", f"{(14_400 - 570 + 540) / 14_400:.4f}")
    approval_id = json.loads(added.stdout)["id"]
    assert approvals("withdraw", "--id", approval_id).returncode == 0
    assert approved() == ("0", "0.9604")
    bad = approvals("add", "--agent", "1001", "--start", "10am", "--end", "11am", "--reason", "x")
    assert bad.returncode == 2
    assert "start='10am'" in bad.stderr
