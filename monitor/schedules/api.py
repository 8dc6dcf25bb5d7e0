"""HTTP API for schedules under /api/v1/tenants/{tenant}/ (bearer auth is the app's middleware).

- `PUT  .../schedules` body JSON (the JSON import format) or text/csv: validated in full and
  applied atomically; 400 with every issue, 200 with a summary. `?dry_run=1` validates only.
- `GET  .../schedules?date=YYYY-MM-DD[&agent=ID]`: the local day, by agent.
- `GET  .../agents/{agent}/schedule?date=YYYY-MM-DD`: one agent's local day.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from monitor.engine.model import Segment
from monitor.schedules.errors import ImportIssue, ScheduleImportError
from monitor.schedules.importers import Format, parse_schedule
from monitor.schedules.store import ScheduleStore

_CONTENT_TYPES: Mapping[str, Format] = {
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/calendar": "ics",
}


def segment_json(s: Segment, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "start": s.start.astimezone(tz).isoformat(),
        "end": s.end.astimezone(tz).isoformat(),
        "activity": s.activity,
        "duration_seconds": int((s.end - s.start).total_seconds()),
    }


def _error(status: int, message: str, issues: list[ImportIssue] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if issues is not None:
        body["issues"] = [i.as_dict() for i in issues]
    return web.json_response(body, status=status)


class _ScheduleApi:
    """The handlers of the schedule endpoints for the tenants in `tenants` (id -> time zone)."""

    def __init__(
        self,
        store: ScheduleStore,
        tenants: Mapping[str, ZoneInfo],
        known_activities: set[str],
    ) -> None:
        self.store = store
        self.tenants = tenants
        self.known_activities = known_activities

    def tenant_zone(self, request: web.Request) -> tuple[str, ZoneInfo]:
        tenant = request.match_info["tenant"]
        tz = self.tenants.get(tenant)
        if tz is None:
            # the name comes from the URL: serialise it, never paste it into JSON by hand
            raise web.HTTPNotFound(
                text=orjson.dumps({"error": f"unknown tenant {tenant}"}).decode(),
                content_type="application/json",
            )
        return tenant, tz

    @staticmethod
    def query_date(request: web.Request) -> date:
        raw = request.query.get("date")
        if raw is None:
            raise web.HTTPBadRequest(
                text='{"error": "query parameter date=YYYY-MM-DD is required"}',
                content_type="application/json",
            )
        try:
            return date.fromisoformat(raw)
        except ValueError as e:
            problem = {"error": f"date: expected a date YYYY-MM-DD, got {raw!r} ({e})"}
            raise web.HTTPBadRequest(
                text=json.dumps(problem), content_type="application/json"
            ) from None

    async def put_schedules(self, request: web.Request) -> web.Response:
        tenant, tz = self.tenant_zone(request)
        fmt = _CONTENT_TYPES.get(request.content_type)
        if fmt is None:
            return _error(
                415,
                f"unsupported content type {request.content_type!r}: send "
                "application/json, text/csv or text/calendar",
            )
        body = await request.read()
        try:
            plan = parse_schedule(
                body, fmt=fmt, source="request body", tz=tz, known_activities=self.known_activities
            )
        except ScheduleImportError as e:
            return _error(400, "invalid schedule; nothing was written", e.issues)
        summary = plan.summary()
        del summary["source"]
        if request.query.get("dry_run") in {"1", "true"}:
            return web.json_response({"tenant": tenant, "dry_run": True, **summary})
        try:
            result = await self.store.apply(tenant, plan)
        except ScheduleImportError as e:
            return _error(409, "conflicts with the stored schedule; nothing was written", e.issues)
        return web.json_response(
            {
                "tenant": tenant,
                **summary,
                "replaced": result.removed,
                "version": result.version,
            }
        )

    async def get_schedules(self, request: web.Request) -> web.Response:
        tenant, tz = self.tenant_zone(request)
        day = self.query_date(request)
        agent = request.query.get("agent")
        if agent is not None:
            by_agent = {agent: await self.store.agent_day(tenant, tz, agent, day)}
            by_agent = {a: v for a, v in by_agent.items() if v}
        else:
            by_agent = await self.store.segments_for_day(tenant, tz, day)
        return web.json_response(
            {
                "tenant": tenant,
                "date": day.isoformat(),
                "timezone": tz.key,
                "version": await self.store.version(tenant),
                "agents": {
                    a: [segment_json(s, tz) for s in segs] for a, segs in sorted(by_agent.items())
                },
            }
        )

    async def get_agent_schedule(self, request: web.Request) -> web.Response:
        tenant, tz = self.tenant_zone(request)
        day = self.query_date(request)
        agent = request.match_info["agent"]
        segments = await self.store.agent_day(tenant, tz, agent, day)
        return web.json_response(
            {
                "tenant": tenant,
                "agent": agent,
                "date": day.isoformat(),
                "timezone": tz.key,
                "segments": [segment_json(s, tz) for s in segments],
            }
        )


def schedule_routes(
    store: ScheduleStore,
    *,
    tenants: Mapping[str, ZoneInfo],
    known_activities: set[str],
) -> list[web.RouteDef]:
    """The schedule endpoints for the tenants in `tenants` (id -> time zone)."""
    api = _ScheduleApi(store, tenants, known_activities)
    base = "/api/v1/tenants/{tenant}"
    return [
        web.put(f"{base}/schedules", api.put_schedules),
        web.get(f"{base}/schedules", api.get_schedules, allow_head=False),
        web.get(f"{base}/agents/{{agent}}/schedule", api.get_agent_schedule, allow_head=False),
    ]
