"""A tiny in-test Puzzel: recorded fixtures served over real HTTP, with scripted faults.

Not the project's simulator (monitor.simulator): just enough of the wire protocol to test the
client's auth, envelope, retry and rate-limit handling one behaviour at a time.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from monitor.core.clock import Clock
from monitor.puzzel.endpoints import ENDPOINTS
from tests.puzzel.conftest import load_fixture

CUSTOMER_KEY = "10001"
API_USER_ID = 158001
CLIENT_ID = "monitor-client"
CLIENT_SECRET = "s3cr3t-client-value-XYZ"
USER_NAME = "api.user"
PASSWORD = "pa55word-value-QRS"

Fault = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the fake saw it."""

    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    at: float  # clock.monotonic()
    body: bytes = b""


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(regex + "$", re.IGNORECASE)


_API_ROUTES = sorted(
    ((n, _pattern(e.template)) for n, e in ENDPOINTS.items() if e.host == "api"),
    key=lambda item: item[1].pattern.count("[^/]+"),  # most literal first
)


@dataclass
class FakePuzzel:
    clock: Clock
    token_ttl: float = 3600.0  # expires_in and accessTokenExpiry
    send_expires_in: bool = True
    seen: list[Seen] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    valid_tokens: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    refresh_body: str = "string"  # "string" (bare JSON string) or "object"
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- scripting -----------------------------------------------------------------------------

    def fail(self, endpoint: str, *faults: Fault) -> None:
        """Answer the next requests to `endpoint` with these, in order."""
        self.faults.setdefault(endpoint, []).extend(faults)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    def requests_to(self, endpoint: str) -> list[Seen]:
        return [s for s in self.seen if s.endpoint == endpoint]

    # --- app -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def _issue(self) -> str:
        token = f"tok-{next(self._counter)}-opaque-bearer"
        self.valid_tokens.add(token)
        return token

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        endpoint = self._endpoint_of(path)
        body = await request.read()
        self.seen.append(
            Seen(
                endpoint,
                request.method,
                path,
                dict(request.query),
                request.headers.get("Authorization"),
                self.clock.monotonic(),
                body,
            )
        )
        queued = self.faults.get(endpoint)
        if queued:
            return await queued.pop(0)(request)
        if endpoint == "oidc_token":
            return await self._oidc(request)
        if endpoint == "login":
            return await self._login(request)
        if endpoint == "get_access_token":
            return await self._refresh(request)
        if endpoint == "unknown":
            return web.json_response({"code": 404, "message": "no such route"}, status=404)
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self.valid_tokens:
            return web.json_response(
                {"code": 401, "message": "Missing or invalid token"}, status=401
            )
        if endpoint == "access_token_information":
            info = load_fixture("access_token_information")
            expiry = self.clock.now() + timedelta(seconds=self.token_ttl)
            info["result"]["accessTokenExpiry"] = expiry.isoformat().replace("+00:00", "Z")
            return web.json_response(info)
        if f"/{CUSTOMER_KEY}/" not in path:
            return web.json_response({"result": None, "code": 3, "message": "bad key"}, status=403)
        return web.json_response(load_fixture(endpoint))

    def _endpoint_of(self, path: str) -> str:
        if path == "/id/connect/token":
            return "oidc_token"
        if path.lower() == "/auth/api/authenticate/login":
            return "login"
        if path.lower() == "/auth/api/authenticate/getaccesstoken":
            return "get_access_token"
        if path.lower().startswith("/contactcentre5/"):
            rest = path[len("/contactcentre5") :]
            for name, pattern in _API_ROUTES:
                if pattern.match(rest):
                    return name
        return "unknown"

    async def _oidc(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=400)
        if form.get("scope") != f"contact-centre:{CUSTOMER_KEY}:{API_USER_ID}":
            return web.json_response({"error": "invalid_scope"}, status=400)
        answer: dict[str, Any] = {"access_token": self._issue(), "token_type": "Bearer"}
        if self.send_expires_in:
            answer["expires_in"] = self.token_ttl
        return web.json_response(answer)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if (body.get("customerKey"), body.get("userName"), body.get("password")) != (
            CUSTOMER_KEY,
            USER_NAME,
            PASSWORD,
        ):
            return web.json_response({"message": "Invalid credentials"}, status=401)
        answer = load_fixture("login")
        answer["accessToken"] = self._issue()
        session = f"session-{next(self._counter)}"
        self.sessions.add(session)
        answer["refreshToken"]["sessionId"] = session
        return web.json_response(answer)

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("sessionId") not in self.sessions:
            return web.json_response({"message": "Session expired"}, status=401)
        token = self._issue()
        if self.refresh_body == "object":
            return web.json_response({"accessToken": token})
        return web.json_response(token)


def status(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Fault:
    """A fault answering `code` with a JSON body."""

    async def respond(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=code, headers=headers)

    return respond


def raw(text: str, code: int = 200) -> Fault:
    """A fault answering this raw text as JSON."""

    async def respond(request: web.Request) -> web.StreamResponse:
        return web.Response(text=text, status=code, content_type="application/json")

    return respond


def slow(seconds: float) -> Fault:
    """A fault that answers only after `seconds` of real time."""

    async def respond(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response({"result": [], "code": 0})

    return respond
