"""6. The adherence report over 30 days of 1,000 agents (issue 13's goal: under 2 s).

Seeding goes through the real writer (`HistoryRecorder`: `file_accruals` and its MULTI/EXEC
per flush) into a real redis-server: per agent and day an 8-hour shift of accrued pieces (phone,
a break, phone, lunch, phone) with two stretches out of adherence, in 20 teams; one exception
per ten agent days (through `record_transitions`); 300 approvals over the month. Then the report
is timed three ways, each the median of `repeats`:

- `adherence_report` in-process (the Redis reads and the assembly),
- `GET /api/v1/reports/adherence` (JSON, and CSV) over loopback HTTP through the real routes,
- `puzzel-monitor report adherence --format csv` as a child process (wall time, including the
  interpreter's start).
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr

from bench.common import BenchResult, median, timed
from monitor.core.clock import VirtualClock
from monitor.engine.model import Accrual, AccruedPiece, AlertTransition, RuleName
from monitor.history.api import history_routes
from monitor.history.approvals import ApprovalRequest, ApprovalStore
from monitor.history.report import ReportQuery, adherence_report
from monitor.history.store import HistoryStore
from monitor.http.auth import bearer_middleware

T = TypeVar("T")
TZ = ZoneInfo("Europe/Oslo")
TENANT = "bench"
PREFIX = "pzm"  # what `report` reads; the benchmark has a database of its own
FIRST_DAY = date(2026, 2, 2)
GOAL_SECONDS = 2.0
ROOT = Path(__file__).resolve().parents[1]
# (start, end, activity is productive, adherent) in local hours of the day
SHIFT = [(8.0, 10.0, True), (10.0, 10.25, False), (10.25, 12.0, True), (12.0, 12.5, False),
         (12.5, 16.0, True)]  # fmt: skip


def _at(day: date, hour: float) -> datetime:
    return datetime.combine(day, datetime.min.time(), TZ).astimezone(UTC) + timedelta(hours=hour)


def _pieces(day: date, rng: random.Random) -> tuple[AccruedPiece, ...]:
    """The day's shift, with two stretches (2 to 12 minutes) out of adherence during phone."""
    anchor = _at(day, 8.0)
    outs = sorted(rng.uniform(8.5, 15.5) for _ in range(2))
    cuts: list[tuple[datetime, datetime, bool, bool]] = []
    for a, b, phone in SHIFT:
        t = a
        for o in outs:
            o = max(o, t)  # noqa: PLW2901 - two stretches never overlap
            if a <= o < b and phone:
                end = min(b, o + rng.uniform(2, 12) / 60)
                cuts.append((_at(day, t), _at(day, o), phone, True))
                cuts.append((_at(day, o), _at(day, end), phone, False))
                t = end
        cuts.append((_at(day, t), _at(day, b), phone, True))
    return tuple(
        AccruedPiece(s, e, anchor, True, adherent, phone and adherent, phone)
        for s, e, phone, adherent in cuts
        if e > s
    )


def _accrual(agent: str, team: str, pieces: tuple[AccruedPiece, ...]) -> Accrual:
    secs = [(p.end - p.start).total_seconds() for p in pieces]
    return Accrual(
        agent, team,
        scheduled_seconds=sum(secs),
        adherent_seconds=sum(s for s, p in zip(secs, pieces, strict=True) if p.adherent),
        productive_seconds=sum(s for s, p in zip(secs, pieces, strict=True) if p.productive),
        productive_scheduled_seconds=sum(
            s for s, p in zip(secs, pieces, strict=True) if p.productive_scheduled
        ),
        pieces=pieces,
    )  # fmt: skip


def _exception(agent: str, team: str, since: datetime) -> AlertTransition:
    return AlertTransition(
        rule=RuleName.OUT_OF_ADHERENCE, status="resolved", tenant=TENANT, subject="agent",
        subject_id=agent, team=team, severity="warning", at=since + timedelta(minutes=9),
        ideal_at=since + timedelta(minutes=8), condition_since=since,
    )  # fmt: skip


async def seed(store: HistoryStore, clock: VirtualClock, agents: int, days: int) -> float:
    """Write `days` of `agents` through the real recorder; the seconds it took."""
    rng = random.Random(13)
    teams = max(2, agents // 50)
    rec = store.recorder(TENANT)
    t0 = time.perf_counter()
    for d in range(days):
        day = FIRST_DAY + timedelta(days=d)
        clock.set(_at(day, 17.0))
        batch = []
        exceptions = []
        for i in range(agents):
            agent, team = f"{10000 + i}", f"Team {i % teams:02d}"
            pieces = _pieces(day, rng)
            batch.append(_accrual(agent, team, pieces))
            if rng.random() < 0.1:
                out = next(p for p in pieces if not p.adherent)
                exceptions.append(_exception(agent, team, out.start))
        await rec.record_accruals(batch)
        await rec.flush()
        await rec.record_transitions(exceptions)
    approvals = ApprovalStore(store)
    for _ in range(300):
        day = FIRST_DAY + timedelta(days=rng.randrange(days))
        start = _at(day, rng.uniform(8, 15))
        agent = f"{10000 + rng.randrange(agents)}"
        req = ApprovalRequest(agent, start, start + timedelta(minutes=30), "meeting", "bench")
        await approvals.approve(TENANT, req)
    return time.perf_counter() - t0


Timed = tuple[float, float]  # (wall, CPU) seconds, medians


async def _timed(repeats: int, fn: Callable[[], Awaitable[T]]) -> tuple[Timed, T]:
    """Wall and CPU (this process: the HTTP server runs in it too) of `fn()`."""
    walls, cpus = [], []
    for _ in range(repeats):
        with timed() as t:
            last = await fn()
        walls.append(t.wall)
        cpus.append(t.cpu)
    return (median(walls), median(cpus)), last


async def _cli(redis_url: str, last: date, repeats: int) -> tuple[Timed, int]:
    """`report adherence --format csv` as a child process: wall, and the child's CPU."""
    walls, cpus, size = [], [], 0
    for _ in range(repeats):
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "report", "adherence", "--tenant", TENANT,
            "--from", FIRST_DAY.isoformat(), "--to", last.isoformat(), "--format", "csv",
            "--timezone", TZ.key, "--redis-url", redis_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        out, err = await proc.communicate()
        walls.append(time.perf_counter() - t0)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"report adherence exited {proc.returncode}: {err.decode()[:300]}")
        size = len(out)
    return (median(walls), median(cpus)), size


async def _http(store: HistoryStore, last: date, repeats: int) -> dict[str, tuple[Timed, int]]:
    """The report over loopback HTTP through the real routes and auth middleware."""
    app = web.Application(middlewares=[bearer_middleware(SecretStr("bench"))])
    app.add_routes(history_routes(store))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/reports/adherence"
    params = {"tenant": TENANT, "from": FIRST_DAY.isoformat(), "to": last.isoformat()}
    out: dict[str, tuple[Timed, int]] = {}
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer bench"}) as session:
            for fmt in ("json", "csv"):

                async def get(fmt: str = fmt) -> bytes:
                    async with session.get(url, params=params | {"format": fmt}) as resp:
                        resp.raise_for_status()
                        return await resp.read()

                took, body = await _timed(repeats, get)
                out[fmt] = (took, len(body))
    finally:
        await runner.cleanup()
    return out


async def run(
    *, redis_url: str, agents: int = 1000, days: int = 30, repeats: int = 3
) -> BenchResult:
    res = BenchResult("history", f"Adherence report: {days} days x {agents:,} agents")
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        clock = VirtualClock(_at(FIRST_DAY, 0))
        store = HistoryStore(redis, tenants={TENANT: TZ}, clock=clock, key_prefix=PREFIX)
        seeding = await seed(store, clock, agents, days)
        last = FIRST_DAY + timedelta(days=days - 1)
        query = ReportQuery(TENANT, FIRST_DAY, last)
        in_process, report = await _timed(repeats, lambda: adherence_report(store, query))
        http = await _http(store, last, repeats)
        cli, cli_bytes = await _cli(redis_url, last, repeats)
    finally:
        await redis.aclose()
    rows = len(report["agents"])
    goal = f"< {GOAL_SECONDS:g} s"
    res.add("seeding through the recorder", seeding, "s", note=f"{agents * days:,} agent days")

    def timing(name: str, took: Timed, note: str) -> None:
        wall, cpu = took
        note = f"CPU {cpu:.2f} s; {note}"
        res.add(name, wall, "s", goal=goal, met=wall < GOAL_SECONDS, note=note)

    timing("report in-process (adherence_report), wall", in_process, f"{rows:,} agent rows")
    for fmt, (took, size) in http.items():
        timing(f"GET /api/v1/reports/adherence ({fmt}), wall", took, f"{size / 1e6:.1f} MB")
    cli_note = f"{cli_bytes / 1e6:.1f} MB, interpreter start included"
    timing("report adherence --format csv (CLI process), wall", cli, cli_note)
    res.data = {
        "agents": agents,
        "days": days,
        "rows": rows,
        "seeding": seeding,
        "in_process": in_process,
        "http": http,
        "cli": cli,
        "cli_bytes": cli_bytes,
    }
    res.notes.append(
        f"medians of {repeats}; CPU is this process's (the HTTP server runs in it) or the CLI "
        "child's; Redis's own time (the server-side join) is in the wall time only. Seeded "
        "through HistoryRecorder: 20 teams, two stretches out of adherence per agent day, an "
        "exception per ten agent days, 300 approvals"
    )
    return res
