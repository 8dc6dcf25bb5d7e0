"""Adherence reports from the history: per agent-day, team-day and team interval (15 or 30
minutes), with the day's exceptions; as JSON documents or one CSV of the agent days.

Adherence = adherent ÷ scheduled seconds; conformance = productive ÷ productive-scheduled
seconds (it may exceed 1); both are None without a denominator (../shared/wfm-domain.md).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.history.approvals import ApprovalStore
from monitor.history.filing import METRICS, overlap_seconds
from monitor.history.keys import SEP
from monitor.history.store import KINDS, HistoryStore

MAX_DAYS = 366
INTERVALS = (15, 30)


class ReportError(ValueError):
    """A bad parameter: names it and the value given."""

    def __init__(self, param: str, value: object, why: str) -> None:
        super().__init__(f"{param}={value!r}: {why}")
        self.param = param


@dataclass(frozen=True)
class ReportQuery:
    tenant: str
    start: date
    end: date  # inclusive
    team: str | None = None
    agent: str | None = None
    interval: int = 15


def parse_query(tenants: Mapping[str, ZoneInfo], params: Mapping[str, str | None]) -> ReportQuery:
    """Validate report parameters (from a query string or the command line)."""
    tenant = params.get("tenant") or ""
    if tenant not in tenants:
        raise ReportError("tenant", tenant, "not a configured tenant")
    start = _date("from", params.get("from"))
    end = _date("to", params.get("to"))
    if end < start:
        raise ReportError("to", params.get("to"), "is before from")
    if (end - start).days >= MAX_DAYS:
        raise ReportError("to", params.get("to"), f"more than {MAX_DAYS} days after from")
    raw_interval = params.get("interval") or "15"
    if raw_interval not in {str(i) for i in INTERVALS}:
        raise ReportError("interval", raw_interval, "must be 15 or 30")
    return ReportQuery(
        tenant, start, end, params.get("team") or None, params.get("agent") or None,
        int(raw_interval),
    )  # fmt: skip


def _date(name: str, value: str | None) -> date:
    if not value:
        raise ReportError(name, value, "required (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReportError(name, value, "not a date (YYYY-MM-DD)") from None


def _metrics(fields: Mapping[str, str], parts: int) -> dict[str, dict[str, Any]]:
    """Hash fields `a<SEP>b<SEP>metric` grouped by their leading `parts` parts (joined by SEP,
    as they are: a month's report reads a million fields, so each is cut once, in C)."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for f, v in fields.items():
        if f.count(SEP) != parts:
            continue
        head, _, metric = f.rpartition(SEP)
        out[head][metric] = v if metric == "team" else float(v)
    return out


def _seconds(m: Mapping[str, Any]) -> dict[str, Any]:
    """The four metrics as `<metric>_seconds`, then adherence and conformance."""
    sched, adh, prod, prod_sched = (float(m.get(k, 0.0)) for k in METRICS)
    return {
        "scheduled_seconds": sched,
        "adherent_seconds": adh,
        "productive_seconds": prod,
        "productive_scheduled_seconds": prod_sched,
        "adherence": adh / sched if sched > 0 else None,
        "conformance": prod / prod_sched if prod_sched > 0 else None,
    }


async def adherence_report(
    store: HistoryStore, q: ReportQuery, *, agent_days_only: bool = False
) -> dict[str, Any]:
    """The report of the days from `from` to `to`; with `agent_days_only` (what the CSV
    shows) without the team days and intervals, which are then empty lists."""
    tz = store.tenants[q.tenant]
    agents: list[dict[str, Any]] = []
    teams: list[dict[str, Any]] = []
    intervals: list[dict[str, Any]] = []
    exceptions: list[dict[str, Any]] = []
    windows = _windows(await ApprovalStore(store).active(q.tenant))
    days = [q.start + timedelta(days=i) for i in range((q.end - q.start).days + 1)]
    kinds = ("agents", "outs", "exceptions") if agent_days_only else KINDS
    async for day, raw in store.iter_days(q.tenant, days, kinds):
        day_agents = _agent_rows(day, raw["agents"], q)
        _approve(day_agents, _outs(raw["outs"]), windows)
        agents += day_agents
        if not agent_days_only:
            teams += _team_rows(day, raw["teams"], q, day_agents)
            intervals += _interval_rows(raw["slots"], q, tz)
        exceptions += _exception_rows(day, raw["exceptions"], q, tz)
    return {
        "tenant": q.tenant,
        "from": q.start.isoformat(),
        "to": q.end.isoformat(),
        "timezone": tz.key,
        "agents": agents,
        "teams": teams,
        "intervals": intervals,
        "exceptions": exceptions,
    }


def _agent_rows(day: date, fields: Mapping[str, str], q: ReportQuery) -> list[dict[str, Any]]:
    rows = []
    iso = day.isoformat()
    for agent, m in sorted(_metrics(fields, 1).items()):
        team = str(m.get("team", ""))
        if (q.agent and agent != q.agent) or (q.team and team != q.team):
            continue
        row = {"date": iso, "agent": agent, "team": team}
        row.update(_seconds(m))
        rows.append(row)
    return rows


def _team_rows(
    day: date, fields: Mapping[str, str], q: ReportQuery, agent_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if q.agent:
        return []
    approved: dict[str, float] = defaultdict(float)
    for r in agent_rows:
        approved[r["team"]] += r["approved_seconds"]
    rows = []
    for team, m in sorted(_metrics(fields, 1).items()):
        if q.team and team != q.team:
            continue
        row = {"date": day.isoformat(), "team": team} | _seconds(m)
        rows.append(row | _approved(row, approved[team]))
    return rows


def _windows(approvals: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for a in approvals:
        span = (datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"]))
        out[a["agent"]].append((span[0].timestamp(), span[1].timestamp()))
    return out


def _outs(fields: Mapping[str, str]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for f, end in fields.items():
        agent, start = f.split(SEP)
        out[agent].append((float(start), float(end)))
    return out


def _approve(
    rows: list[dict[str, Any]],
    outs: Mapping[str, list[tuple[float, float]]],
    windows: Mapping[str, list[tuple[float, float]]],
) -> None:
    """Approved seconds: the agent's time out of adherence inside its approved ranges."""
    for r in rows:
        mine = windows.get(r["agent"])
        seconds = overlap_seconds(outs.get(r["agent"], []), mine) if mine else 0.0
        r.update(_approved(r, seconds))


def _approved(row: Mapping[str, Any], seconds: float) -> dict[str, Any]:
    sched = row["scheduled_seconds"]
    adherence = (row["adherent_seconds"] + seconds) / sched if sched > 0 else None
    return {"approved_seconds": seconds, "approved_adherence": adherence}


def _interval_rows(fields: Mapping[str, str], q: ReportQuery, tz: ZoneInfo) -> list[dict[str, Any]]:
    if q.agent:
        return []
    width = q.interval * 60
    sums: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    buckets: dict[str, int] = {}  # slot -> its interval's start; the same for every team
    for head, m in _metrics(fields, 2).items():
        team, _, slot = head.partition(SEP)
        if q.team and team != q.team:
            continue
        bucket = buckets.get(slot)
        if bucket is None:
            start = datetime.fromtimestamp(int(slot), UTC).astimezone(tz)
            # local alignment: a 30-minute interval starts on a local half hour
            bucket = buckets[slot] = int(slot) - (start.minute % q.interval) * 60 - start.second
        into = sums[(team, bucket)]
        for k, v in m.items():
            into[k] += v
    labels: dict[int, tuple[str, str]] = {}
    rows = []
    for (team, bucket), seconds in sorted(sums.items()):
        if bucket not in labels:
            labels[bucket] = (
                datetime.fromtimestamp(bucket, UTC).astimezone(tz).isoformat(),
                datetime.fromtimestamp(bucket + width, UTC).astimezone(tz).isoformat(),
            )
        first, last = labels[bucket]
        rows.append({"team": team, "start": first, "end": last})
        rows[-1].update(_seconds(seconds))
    return rows


def _exception_rows(
    day: date, docs: Mapping[str, Any], q: ReportQuery, tz: ZoneInfo
) -> list[dict[str, Any]]:
    rows = []
    for doc in docs.values():
        if q.agent and not (doc["subject"] == "agent" and doc["subject_id"] == q.agent):
            continue
        if q.team and doc.get("team") != q.team:
            continue
        local = {
            k: datetime.fromisoformat(doc[k]).astimezone(tz).isoformat() if doc[k] else None
            for k in ("start", "end")
        }
        rows.append({"date": day.isoformat()} | doc | local)
    rows.sort(key=lambda r: (r["start"], r["rule"], r["subject_id"]))
    return rows


CSV_COLUMNS = (
    "date", "agent", "team", "scheduled_seconds", "adherent_seconds", "productive_seconds",
    "productive_scheduled_seconds", "adherence", "conformance", "approved_seconds",
    "approved_adherence", "exceptions",
)  # fmt: skip


def adherence_csv(report: Mapping[str, Any]) -> str:
    """One row per agent and day; `exceptions` counts that agent's exceptions of the day."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for e in report["exceptions"]:
        if e["subject"] == "agent":
            counts[(e["date"], e["subject_id"])] += 1
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    # 30,000 rows for a month of 1,000 agents: each cell formatted by its own column's rule
    w.writerows(
        [
            r["date"],
            r["agent"],
            r["team"],
            _secs(r["scheduled_seconds"]),
            _secs(r["adherent_seconds"]),
            _secs(r["productive_seconds"]),
            _secs(r["productive_scheduled_seconds"]),
            _ratio(r["adherence"]),
            _ratio(r["conformance"]),
            _secs(r["approved_seconds"]),
            _ratio(r["approved_adherence"]),
            counts[(r["date"], r["agent"])],
        ]
        for r in report["agents"]
    )
    return buf.getvalue()


def _secs(v: float) -> str:
    """Seconds to the millisecond, without trailing zeros: 7200, 312.5."""
    text = repr(round(v, 3))
    return text[:-2] if text.endswith(".0") else text


def _ratio(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


async def intervals_report(store: HistoryStore, q: ReportQuery) -> dict[str, Any]:
    """The visual queues' closed intervals of the local days from `from` to `to`."""
    rows: list[dict[str, Any]] = []
    day = q.start
    while day <= q.end:
        raw = await store.redis.hgetall(store.keys.queue_intervals(q.tenant, day))
        rows += [json.loads(v) for v in raw.values()]
        day += timedelta(days=1)
    rows.sort(key=lambda r: (r["start"], r["queue"]))
    return {"tenant": q.tenant, "from": q.start.isoformat(), "to": q.end.isoformat(),
            "intervals": rows}  # fmt: skip


INTERVAL_COLUMNS = (
    "queue", "start", "end", "offered", "answered", "abandoned", "answered_within_sla",
    "service_level", "average_wait_seconds", "longest_wait_seconds", "agents_logged_on",
    "agents_ready", "samples",
)  # fmt: skip


def intervals_csv(report: Mapping[str, Any], queue: str | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(INTERVAL_COLUMNS)
    for r in report["intervals"]:
        if queue is None or r["queue"] == queue:
            w.writerow(["" if r.get(c) is None else r[c] for c in INTERVAL_COLUMNS])
    return buf.getvalue()
