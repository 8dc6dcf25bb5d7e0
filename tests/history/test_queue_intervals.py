"""Interval statistics per visual queue, from hand-written snapshots: today counters as deltas
(across the midnight reset, and across a restart in mid-interval: a fresh recorder on the same
Redis), gauges sampled; each closed interval stored and streamed once."""

from __future__ import annotations

import asyncio
import csv
import io
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from monitor.core.clock import SystemClock
from monitor.core.keys import RedisKeys
from monitor.core.snapshots import QueueObservation, QueueSnapshot
from monitor.history.api import history_routes
from monitor.history.queue_store import QueueIntervalRecorder
from monitor.history.store import HistoryStore
from monitor.http.auth import bearer_middleware
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
OSLO = ZoneInfo("Europe/Oslo")
# 23:40 local on 2 March 2026 (UTC+1): the intervals 23:30, 23:45, then 00:00 on 3 March
T = datetime(2026, 3, 2, 22, 40, tzinfo=UTC)


def _q(counts: tuple[int, int, int, int], wait_max: float, ready: int) -> QueueObservation:
    offered, answered, abandoned, within = counts
    return QueueObservation(
        "4101", "Support NO", calls_offered_today=offered, calls_answered_today=answered,
        calls_abandoned_today=abandoned, calls_answered_within_sla=within,
        wait_time_max_seconds=wait_max, wait_time_average_seconds=wait_max / 2,
        agents_logged_on=4, agents_ready=ready,
    )  # fmt: skip


# (minutes after T, observation); counters are Puzzel's "today" figures, reset at local midnight
POLLS = [
    (0, _q((100, 90, 10, 80), 20, 2)),  # first sight: no delta (what came before was not seen)
    (3, _q((104, 93, 10, 82), 40, 1)),  # 23:43: +4 offered, +3 answered, +2 within
    (6, _q((110, 97, 11, 85), 60, 0)),  # 23:46 (next interval): +6, +4, +1 abandoned, +3 within
    (12, _q((112, 99, 11, 86), 10, 3)),  # 23:52: +2, +2, +1 within   -- restart after this poll
    (19, _q((115, 101, 12, 87), 30, 2)),  # 23:59: +3, +2, +1, +1
    (23, _q((2, 1, 1, 1), 50, 1)),  # 00:03 (next interval), after the reset: +2, +1, +1, +1
    (31, _q((5, 3, 1, 3), 0, 4)),  # 00:11: +3, +2, 0, +2
    (36, _q((5, 3, 1, 3), 0, 4)),  # 00:16: closes 00:00
]


async def _feed(rec: QueueIntervalRecorder, polls: list[tuple[int, QueueObservation]]) -> None:
    for minutes, q in polls:
        await rec.on_queues(QueueSnapshot("t1", T + timedelta(minutes=minutes), (q,)))


async def test_intervals_across_a_restart_and_midnight(redis_client: aioredis.Redis) -> None:
    def recorder() -> QueueIntervalRecorder:
        return QueueIntervalRecorder(redis_client, tenant="t1", tz=OSLO)

    await _feed(recorder(), POLLS[:4])
    await _feed(recorder(), POLLS[4:])  # a restarted monitor: state from Redis only
    first = await recorder().read_day(date(2026, 3, 2))
    second = await recorder().read_day(date(2026, 3, 3))
    got = [
        (i["start"][11:16], i["offered"], i["answered"], i["abandoned"], i["answered_within_sla"])
        for i in first + second
    ]
    assert got == [
        ("23:30", 4, 3, 0, 2),
        ("23:45", 6 + 2 + 3, 4 + 2 + 2, 1 + 0 + 1, 3 + 1 + 1),
        ("00:00", 2 + 3, 1 + 2, 1 + 0, 1 + 2),
    ]
    late = first[1]  # polls 23:46, 23:52 and (after the restart) 23:59
    assert late["service_level"] == 5 / (8 + 2)
    assert late["longest_wait_seconds"] == 60
    assert late["agents_ready"] == (0 + 3 + 2) / 3
    assert late["average_wait_seconds"] == (30 + 5 + 15) / 3
    assert late["samples"] == 3


async def test_each_closed_interval_is_streamed_once(redis_client: aioredis.Redis) -> None:
    rec = QueueIntervalRecorder(redis_client, tenant="t1", tz=OSLO)
    await _feed(rec, POLLS)
    stream = RedisKeys().queue_interval_stream("t1")
    await redis_client.xgroup_create(stream, "forecast", id="0")
    entries = await redis_client.xreadgroup("forecast", "c1", {stream: ">"})
    ((_, rows),) = entries
    assert len(rows) == 3


async def test_the_stream_keeps_only_its_retention(redis_client: aioredis.Redis) -> None:
    """Entries older than `stream_retention` (by the snapshots' time) are trimmed at the next
    append; the per-day hashes expire `retention` (plus a day) after they were written."""
    stream = RedisKeys().queue_interval_stream("t1")
    old = int((T - timedelta(days=8)).timestamp() * 1000)
    recent = int((T - timedelta(days=6)).timestamp() * 1000)
    await redis_client.xadd(stream, {"interval": "{}"}, id=f"{old}-0")
    await redis_client.xadd(stream, {"interval": "{}"}, id=f"{recent}-0")
    rec = QueueIntervalRecorder(
        redis_client, tenant="t1", tz=OSLO,
        retention=timedelta(days=30), stream_retention=timedelta(days=7),
    )  # fmt: skip
    await _feed(rec, POLLS)
    ids = [i.decode() for i, _ in await redis_client.xrange(stream)]
    assert len(ids) == 1 + 3
    assert ids[0] == f"{recent}-0"
    ttl = await redis_client.ttl(RedisKeys().queue_intervals("t1", date(2026, 3, 2)))
    assert 30 * 86400 < ttl <= 31 * 86400


async def test_intervals_report_over_http_and_the_command_line(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
    redis_client: aioredis.Redis,
    redis_server: RedisServer,
) -> None:
    """`GET /api/v1/reports/intervals` (JSON and CSV, 400 naming a bad parameter) and `report
    intervals` read the same closed intervals."""
    await _feed(QueueIntervalRecorder(redis_client, tenant="t1", tz=OSLO), POLLS)
    store = HistoryStore(redis_client, tenants={"t1": OSLO}, clock=SystemClock())
    app = web.Application(middlewares=[bearer_middleware(SecretStr("tok"))])
    app.add_routes(history_routes(store))
    client = await aiohttp_client(app)
    auth = {"Authorization": "Bearer tok"}
    params = {"tenant": "t1", "from": "2026-03-02", "to": "2026-03-03", "queue": "4101"}
    body = await (await client.get("/api/v1/reports/intervals", params=params, headers=auth)).json()
    assert [(i["start"][11:16], i["offered"]) for i in body["intervals"]] == [
        ("23:30", 4), ("23:45", 11), ("00:00", 5),
    ]  # fmt: skip
    as_csv = await client.get(
        "/api/v1/reports/intervals", params=params | {"format": "csv"}, headers=auth
    )
    text = await as_csv.text()
    bad = await client.get(
        "/api/v1/reports/intervals", params=params | {"from": "3 March"}, headers=auth
    )
    assert bad.status == 400
    assert "from='3 March'" in (await bad.json())["error"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "report", "intervals", "--tenant", "t1",
        "--from", "2026-03-02", "--to", "2026-03-03", "--queue", "4101",
        "--timezone", "Europe/Oslo", "--redis-url", redis_server.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    assert out.decode() == text
    assert [r["offered"] for r in csv.DictReader(io.StringIO(text))] == ["4", "11", "5"]
