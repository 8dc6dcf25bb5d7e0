"""HTTP API for alerts: list open alerts, acknowledge, snooze/unsnooze an alert or an agent.

Authentication is the app's `monitor.http.auth.bearer_middleware`; these handlers assume it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from monitor.alerts.model import parse_rfc3339, rfc3339
from monitor.alerts.snooze import Mute, SnoozeStore
from monitor.alerts.store import AlertRecord, AlertStore
from monitor.core.clock import Clock
from monitor.core.durations import parse_duration

MAX_SNOOZE = timedelta(days=30)


def _mute_json(m: Mute) -> dict[str, Any]:
    return {"kind": m.kind, "until": rfc3339(m.until), "by": m.by}


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=web.json_response({"error": message}).text, content_type="application/json"
    )


def until_from(body: Mapping[str, Any], now: datetime, *, required: bool = True) -> datetime | None:
    """`until` (RFC 3339) or `duration` (`2h`, `90m`) from a request body: the rules of every
    snooze and acknowledgement, whichever API asks (HTTP, MCP). ValueError says what is wrong."""
    if "until" in body:
        try:
            until = parse_rfc3339(str(body["until"]))
        except ValueError as exc:
            raise ValueError(f"until: {exc}") from None
    elif "duration" in body:
        try:
            until = now + parse_duration(body["duration"])
        except ValueError as exc:
            raise ValueError(f"duration: {exc}") from None
    elif required:
        raise ValueError("give either 'until' (RFC 3339 time) or 'duration' (e.g. '2h')")
    else:
        return None
    if until <= now:
        raise ValueError("the snooze must end in the future")
    if until - now > MAX_SNOOZE:
        raise ValueError(f"a snooze may last at most {MAX_SNOOZE.days} days")
    return until


async def open_alert(store: AlertStore, fingerprint: str) -> AlertRecord | None:
    """The alert with this fingerprint if it is firing (only an open alert can be muted)."""
    record = await store.get(fingerprint)
    return record if record is not None and record.alert.status == "firing" else None


async def _until(request: web.Request, clock: Clock, *, required: bool = True) -> datetime | None:
    body: Any = {}
    if request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            raise _bad('the body must be JSON: {"until": RFC 3339} or {"duration": "2h"}') from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    try:
        return until_from(body, clock.now(), required=required)
    except ValueError as exc:
        raise _bad(str(exc)) from None


def _by(request: web.Request) -> str | None:
    return request.headers.get("X-Puzzel-Monitor-User")


def alert_routes(store: AlertStore, snoozes: SnoozeStore, *, clock: Clock) -> list[web.RouteDef]:
    """The `/api/v1/alerts...` and agent-snooze routes."""

    async def list_alerts(request: web.Request) -> web.Response:
        out = []
        for record in await store.firing():
            item: dict[str, Any] = record.alert.to_dict()
            item["mutes"] = [_mute_json(m) for m in await snoozes.mutes(record.alert)]
            out.append(item)
        return web.json_response({"alerts": out})

    async def _record(request: web.Request) -> Any:
        fp = request.match_info["fingerprint"]
        record = await open_alert(store, fp)
        if record is None:
            raise web.HTTPNotFound(
                text=web.json_response({"error": f"no open alert {fp}"}).text,
                content_type="application/json",
            )
        return record

    async def ack(request: web.Request) -> web.Response:
        record = await _record(request)
        until = await _until(request, clock, required=False)
        mute = await snoozes.ack_alert(record.alert, until=until, by=_by(request))
        return web.json_response({"fingerprint": record.alert.fingerprint, **_mute_json(mute)})

    async def unack(request: web.Request) -> web.Response:
        removed = await snoozes.unack_alert(request.match_info["fingerprint"])
        return web.json_response({"removed": removed})

    async def snooze(request: web.Request) -> web.Response:
        record = await _record(request)
        until = await _until(request, clock)
        assert until is not None  # required=True guarantees it
        mute = await snoozes.snooze_alert(record.alert.fingerprint, until, by=_by(request))
        return web.json_response({"fingerprint": record.alert.fingerprint, **_mute_json(mute)})

    async def unsnooze(request: web.Request) -> web.Response:
        removed = await snoozes.unsnooze_alert(request.match_info["fingerprint"])
        return web.json_response({"removed": removed})

    async def snooze_agent(request: web.Request) -> web.Response:
        tenant, agent = request.match_info["tenant"], request.match_info["agent"]
        until = await _until(request, clock)
        assert until is not None  # required=True guarantees it
        mute = await snoozes.snooze_agent(tenant, agent, until, by=_by(request))
        return web.json_response({"tenant": tenant, "agent": agent, **_mute_json(mute)})

    async def unsnooze_agent(request: web.Request) -> web.Response:
        removed = await snoozes.unsnooze_agent(
            request.match_info["tenant"], request.match_info["agent"]
        )
        return web.json_response({"removed": removed})

    return [
        web.get("/api/v1/alerts", list_alerts),
        web.post("/api/v1/alerts/{fingerprint}/ack", ack),
        web.delete("/api/v1/alerts/{fingerprint}/ack", unack),
        web.post("/api/v1/alerts/{fingerprint}/snooze", snooze),
        web.delete("/api/v1/alerts/{fingerprint}/snooze", unsnooze),
        web.post("/api/v1/tenants/{tenant}/agents/{agent}/snooze", snooze_agent),
        web.delete("/api/v1/tenants/{tenant}/agents/{agent}/snooze", unsnooze_agent),
    ]
