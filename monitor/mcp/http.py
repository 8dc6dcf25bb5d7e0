"""The MCP server over streamable HTTP, at `/mcp` on the monitor's own aiohttp server.

The SDK's HTTP transport is an ASGI (Starlette) app; `AsgiBridge` turns each aiohttp request into
one ASGI call (body streamed in, response streamed out, so SSE answers work as well as JSON) and
runs the app's lifespan (the SDK's session manager) from `start` to `stop`. Stateless JSON mode:
every POST carries its own token, so no session outlives the token that opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import Any

from aiohttp import web
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.mcp.audit import DENIED, AuditLog
from monitor.mcp.tokens import TokenRejected, TokenStore

PATH = "/mcp"
CHUNK = 64 * 1024
DISCONNECT_CHECK_S = 1.0


def require_token(app: ASGIApp, tokens: TokenStore, audit: AuditLog) -> ASGIApp:
    """401 for a request without a valid token, before the SDK sees it (so that even listing
    the tools needs one); each tool call is then authorised again, with its scope."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            scheme, _, given = header.partition(" ")
            try:
                await tokens.verify(given.strip() if scheme.lower() == "bearer" else None)
            except TokenRejected as e:
                await audit.record(token=None, tool="(http)", arguments={}, code=DENIED)
                headers = {"WWW-Authenticate": "Bearer"}
                await JSONResponse({"error": str(e)}, 401, headers)(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded


def asgi_scope(request: web.Request) -> dict[str, Any]:
    """The ASGI 3 HTTP scope of an aiohttp request."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "query_string": request.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if peer else None,
        "server": tuple(sock[:2]) if sock else None,
    }


class _Exchange:
    """One request/response between aiohttp and an ASGI app."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None
        self._start: MutableMapping[str, Any] | None = None
        self._body_done = False
        self._finished = asyncio.Event()

    async def receive(self) -> Message:
        if not self._body_done:
            chunk = await self.request.content.read(CHUNK)
            more = not self.request.content.at_eof()
            self._body_done = not more
            return {"type": "http.request", "body": chunk, "more_body": more}
        # the app listens for a disconnect while it streams: say so once the answer is done or
        # the client went away (checked every second: aiohttp has no event for it)
        while not self._finished.is_set() and not self._gone():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), DISCONNECT_CHECK_S)
        return {"type": "http.disconnect"}

    def _gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body":
            return
        response = await self._prepared()
        body = message.get("body", b"")
        if body:
            await response.write(body)
        if not message.get("more_body", False):
            await response.write_eof()
            self._finished.set()

    async def _prepared(self) -> web.StreamResponse:
        if self.response is None:
            if self._start is None:
                raise RuntimeError("ASGI app sent a body before http.response.start")
            response = web.StreamResponse(status=self._start["status"])
            for name, value in self._start.get("headers", []):
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            await response.prepare(self.request)
            self.response = response
        return self.response

    async def finish(self) -> web.StreamResponse:
        """The response after the app returned (an app that sent only a start gets it sent)."""
        self._finished.set()
        if self.response is None and self._start is not None:
            response = await self._prepared()
            await response.write_eof()
        if self.response is None:
            return web.Response(status=500, text="the MCP app sent no response")
        return self.response


class AsgiBridge:
    """Serves an ASGI app (with its lifespan) from aiohttp handlers."""

    def __init__(self, app: Starlette, wrapped: ASGIApp | None = None) -> None:
        self._app = app
        self._asgi: ASGIApp = wrapped or app
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # the lifespan runs in a task of its own: the SDK's session manager holds an anyio task
        # group, which must be left from the task that entered it
        self._stop.clear()
        self._task = asyncio.create_task(self._lifespan(), name="mcp-lifespan")
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self._task.done():
            await self._task  # raises why it could not start
            raise RuntimeError("the MCP app's lifespan ended at once")

    async def _lifespan(self) -> None:
        async with self._app.router.lifespan_context(self._app):
            self._ready.set()
            await self._stop.wait()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._ready.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._ready.is_set():
            return web.json_response({"error": "the MCP server is not running"}, status=503)
        exchange = _Exchange(request)
        await self._asgi(asgi_scope(request), exchange.receive, exchange.send)
        return await exchange.finish()


class McpEndpoint:
    """`/mcp` for the monitor's HTTP app: token check, then the SDK's streamable HTTP app."""

    def __init__(
        self, server: MCPServer, tokens: TokenStore, audit: AuditLog, *, host: str = "127.0.0.1"
    ) -> None:
        # host: the SDK guards loopback hosts against DNS rebinding (Host/Origin checked)
        app = server.streamable_http_app(
            streamable_http_path=PATH, stateless_http=True, json_response=True, host=host
        )
        self.bridge = AsgiBridge(app, require_token(app, tokens, audit))

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", PATH, self.bridge.handle)]

    async def start(self) -> None:
        await self.bridge.start()

    async def stop(self) -> None:
        await self.bridge.stop()
