"""HTTP API for the Slack user mapping under /api/v1/tenants/{tenant}/ (bearer auth is the app's
middleware, as for schedules).

- `PUT .../slack-users` body text/csv, application/json or application/yaml (the file formats
  of `slack-users import`): validated in full, then written in one transaction; 400 with every
  issue. Merges into the stored mapping; `?replace=1` replaces it; `?dry_run=1` validates only.
- `GET .../slack-users`: every mapped agent, and for e-mails what Slack answered.
- `DELETE .../slack-users/{agent}`: one agent unmapped (404 if it was not mapped).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import orjson
from aiohttp import web

from monitor.alerts.slack_users import (
    Format,
    SlackUsersError,
    SlackUserStore,
    describe,
    parse_slack_users,
)

_CONTENT_TYPES: Mapping[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/json": "yaml",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
}
_YES = {"1", "true", "yes"}


def _json_error(status: int, message: str) -> web.HTTPException:
    cls = {404: web.HTTPNotFound, 415: web.HTTPUnsupportedMediaType}[status]
    return cls(text=orjson.dumps({"error": message}).decode(), content_type="application/json")


class _SlackUserApi:
    def __init__(self, store: SlackUserStore, tenants: Collection[str]) -> None:
        self.store = store
        self.tenants = set(tenants)

    def tenant(self, request: web.Request) -> str:
        tenant = request.match_info["tenant"]
        if tenant not in self.tenants:
            raise _json_error(404, f"unknown tenant {tenant}")
        return tenant

    async def put(self, request: web.Request) -> web.Response:
        tenant = self.tenant(request)
        fmt = _CONTENT_TYPES.get(request.content_type)
        if fmt is None:
            raise _json_error(
                415,
                f"unsupported content type {request.content_type!r}: send text/csv, "
                "application/json or application/yaml",
            )
        try:
            entries = parse_slack_users(await request.read(), fmt=fmt, source="request body")
        except SlackUsersError as e:
            body = {
                "error": "invalid Slack user mapping; nothing was written",
                "issues": [i.as_dict() for i in e.issues],
            }
            return web.json_response(body, status=400)
        replace = request.query.get("replace", "").lower() in _YES
        if request.query.get("dry_run", "").lower() in _YES:
            return web.json_response({"tenant": tenant, "dry_run": True, "valid": len(entries)})
        applied = await self.store.apply(tenant, entries, replace=replace)
        return web.json_response({"tenant": tenant, "replace": replace, **applied.as_dict()})

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(await describe(self.store, self.tenant(request)))

    async def delete(self, request: web.Request) -> web.Response:
        tenant = self.tenant(request)
        agent = request.match_info["agent"]
        if not await self.store.remove(tenant, agent):
            raise _json_error(404, f"agent {agent} is not mapped in tenant {tenant}")
        return web.json_response({"tenant": tenant, "puzzel_user_id": agent, "removed": True})


def slack_user_routes(store: SlackUserStore, *, tenants: Collection[str]) -> list[web.RouteDef]:
    api = _SlackUserApi(store, tenants)
    base = "/api/v1/tenants/{tenant}/slack-users"
    return [
        web.put(base, api.put),
        web.get(base, api.get, allow_head=False),
        web.delete(f"{base}/{{agent}}", api.delete),
    ]
