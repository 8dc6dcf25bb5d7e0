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
from monitor.history.store import HistoryStore

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


def _ratios(m: Mapping[str, float]) -> dict[str, Any]:
    sched, prod_sched = m.get("scheduled", 0.0), m.get("productive_scheduled", 0.0)
    return {
        "adherence": m.get("adherent", 0.0) / sched if sched > 0 else None,
        "conformance": m.get("productive", 0.0) / prod_sched if prod_sched > 0 else None,
    }


def _metrics(fields: Mapping[str, str], parts: int) -> dict[tuple[str, ...], dict[str, Any]]:
    """Hash fields `a<SEP>b<SEP>metric` grouped by their leading parts."""
    out: dict[tuple[str, ...], dict[str, Any]] = defaultdict(dict)
    for f, v in fields.items():
        *head, metric = f.split(SEP)
        if len(head) != parts:
            continue
        out[tuple(head)][metric] = v if metric == "team" else float(v)
    return out


async def adherence_report(store: HistoryStore, q: ReportQuery) -> dict[str, Any]:
    tz = store.tenants[q.tenant]
    agents: list[dict[str, Any]] = []
    teams: list[dict[str, Any]] = []
    intervals: list[dict[str, Any]] = []
    exceptions: list[dict[str, Any]] = []
    windows = _windows(await ApprovalStore(store).active(q.tenant))
    day = q.start
    while day <= q.end:
        raw = await store.read_day(q.tenant, day)
        day_agents = _agent_rows(day, raw["agents"], q)
        _approve(day_agents, _outs(raw["outs"]), windows)
        agents += day_agents
        teams += _team_rows(day, raw["teams"], q, day_agents)
        intervals += _interval_rows(raw["slots"], q, tz)
        exceptions += _exception_rows(day, raw["exceptions"], q, tz)
        day += timedelta(days=1)
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
    for (agent,), m in sorted(_metrics(fields, 1).items()):
        team = str(m.get("team", ""))
        if (q.agent and agent != q.agent) or (q.team and team != q.team):
            continue
        seconds = {k: float(m.get(k, 0.0)) for k in METRICS}
        rows.append(
            {"date": day.isoformat(), "agent": agent, "team": team}
            | {f"{k}_seconds": v for k, v in seconds.items()}
            | _ratios(seconds)
        )
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
    for (team,), m in sorted(_metrics(fields, 1).items()):
        if q.team and team != q.team:
            continue
        seconds = {k: float(m.get(k, 0.0)) for k in METRICS}
        row = (
            {"date": day.isoformat(), "team": team}
            | {f"{k}_seconds": v for k, v in seconds.items()}
            | _ratios(seconds)
        )
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
        seconds = overlap_seconds(outs.get(r["agent"], []), windows.get(r["agent"], []))
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
    for (team, slot), m in _metrics(fields, 2).items():
        if q.team and team != q.team:
            continue
        start = datetime.fromtimestamp(int(slot), UTC).astimezone(tz)
        # local alignment: a 30-minute interval starts on a local half hour
        offset = (start.minute % q.interval) * 60
        bucket = int(slot) - offset - start.second
        for k in METRICS:
            sums[(team, bucket)][k] += float(m.get(k, 0.0))
    rows = []
    for (team, bucket), seconds in sorted(sums.items()):
        start = datetime.fromtimestamp(bucket, UTC).astimezone(tz)
        end = datetime.fromtimestamp(bucket + width, UTC).astimezone(tz)
        rows.append(
            {"team": team, "start": start.isoformat(), "end": end.isoformat()}
            | {f"{k}_seconds": v for k, v in seconds.items()}
            | _ratios(seconds)
        )
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
    for r in report["agents"]:
        row = [_cell(c, r[c]) for c in CSV_COLUMNS[:-1]]
        w.writerow([*row, counts[(r["date"], r["agent"])]])
    return buf.getvalue()


def _cell(column: str, v: object) -> object:
    if v is None:
        return ""
    if isinstance(v, float):
        if column in {"adherence", "conformance", "approved_adherence"}:
            return f"{v:.4f}"
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return v


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
