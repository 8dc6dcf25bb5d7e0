"""`GET /api/v1/reports/adherence?tenant=&from=&to=[&team=][&agent=][&interval=15|30]`: JSON,
or one CSV of the agent days with `Accept: text/csv` or `format=csv` (bearer auth is the app's
middleware). `GET /api/v1/reports/intervals?tenant=&from=&to=[&queue=]`: the visual queues'
closed intervals, the same ways. A bad parameter is a 400 naming it and the value given."""

from __future__ import annotations

from aiohttp import web

from monitor.history.report import (
    ReportError,
    adherence_csv,
    adherence_report,
    intervals_csv,
    intervals_report,
    parse_query,
)
from monitor.history.store import HistoryStore


def _wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt is not None:
        if fmt not in ("csv", "json"):
            raise ReportError("format", fmt, "must be csv or json")
        return fmt == "csv"
    return "text/csv" in request.headers.get("Accept", "")


def history_routes(store: HistoryStore, *, default_interval: int = 15) -> list[web.RouteDef]:
    async def adherence(request: web.Request) -> web.Response:
        params = {"interval": str(default_interval), **request.query}
        try:
            query = parse_query(store.tenants, params)
            as_csv = _wants_csv(request)
        except ReportError as exc:
            return web.json_response({"error": str(exc), "parameter": exc.param}, status=400)
        report = await adherence_report(store, query)
        if as_csv:
            return web.Response(text=adherence_csv(report), content_type="text/csv")
        return web.json_response(report)

    async def intervals(request: web.Request) -> web.Response:
        try:
            query = parse_query(store.tenants, {"interval": "15", **request.query})
            as_csv = _wants_csv(request)
        except ReportError as exc:
            return web.json_response({"error": str(exc), "parameter": exc.param}, status=400)
        report = await intervals_report(store, query)
        queue = request.query.get("queue") or None
        if as_csv:
            return web.Response(text=intervals_csv(report, queue), content_type="text/csv")
        if queue is not None:
            report["intervals"] = [r for r in report["intervals"] if r["queue"] == queue]
        return web.json_response(report)

    return [
        web.get("/api/v1/reports/adherence", adherence),
        web.get("/api/v1/reports/intervals", intervals),
    ]
