"""Approved exceptions over HTTP (bearer auth is the app's middleware); who is the
`X-Puzzel-Monitor-User` header, as for acks.

- `POST   /api/v1/tenants/{tenant}/agents/{agent}/approvals` `{"start", "end", "reason"}`
  (ISO 8601; a time without an offset is the tenant's local time): 201 with the approval.
- `DELETE /api/v1/tenants/{tenant}/approvals/{id}`: withdraws it (kept, marked, audited).
- `GET    /api/v1/tenants/{tenant}/approvals`: the active approvals and the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from monitor.history.approvals import ApprovalRequest, ApprovalStore
from monitor.history.store import HistoryStore

MAX_REASON = 500


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def _time(body: dict[str, Any], name: str, tz: ZoneInfo) -> datetime:
    value = body.get(name)
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name}={value!r}: not an ISO 8601 time") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def request_from(body: Any, agent: str, by: str, tz: ZoneInfo) -> ApprovalRequest:
    """The approval a JSON body (or the command line) asks for; ValueError names the field."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object with start, end and reason")
    start, end = _time(body, "start", tz), _time(body, "end", tz)
    if end <= start:
        raise ValueError(f"end={body.get('end')!r}: not after start")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise ValueError(f"reason={reason!r}: required, at most {MAX_REASON} characters")
    return ApprovalRequest(agent, start, end, reason.strip(), by)


def approval_routes(history: HistoryStore) -> list[web.RouteDef]:
    store = ApprovalStore(history)

    def tenant_of(request: web.Request) -> tuple[str, ZoneInfo]:
        tenant = request.match_info["tenant"]
        if tenant not in history.tenants:
            raise web.HTTPNotFound(text=f"no tenant {tenant!r}")
        return tenant, history.tenants[tenant]

    async def approve(request: web.Request) -> web.Response:
        tenant, tz = tenant_of(request)
        by = request.headers.get("X-Puzzel-Monitor-User")
        if not by:
            return _bad("X-Puzzel-Monitor-User: required (who approves)")
        try:
            body = await request.json() if request.can_read_body else None
            req = request_from(body, request.match_info["agent"], by, tz)
        except ValueError as e:  # json.JSONDecodeError is one
            return _bad(str(e))
        return web.json_response(await store.approve(tenant, req), status=201)

    async def withdraw(request: web.Request) -> web.Response:
        tenant, _ = tenant_of(request)
        by = request.headers.get("X-Puzzel-Monitor-User")
        if not by:
            return _bad("X-Puzzel-Monitor-User: required (who withdraws)")
        doc = await store.withdraw(tenant, request.match_info["id"], by)
        if doc is None:
            raise web.HTTPNotFound(text="no such active approval")
        return web.json_response(doc)

    async def listing(request: web.Request) -> web.Response:
        tenant, _ = tenant_of(request)
        return web.json_response(
            {"approvals": await store.active(tenant), "audit": await store.audit(tenant)}
        )

    base = "/api/v1/tenants/{tenant}"
    return [
        web.post(base + "/agents/{agent}/approvals", approve),
        web.delete(base + "/approvals/{id}", withdraw),
        web.get(base + "/approvals", listing),
    ]
