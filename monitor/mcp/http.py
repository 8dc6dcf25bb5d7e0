"""The MCP server over streamable HTTP, on its own loopback port.

The SDK's HTTP transport is an ASGI (Starlette) app and the monitor's server is aiohttp; rather
than bridge two servers' streaming models, uvicorn serves it next to the monitor, in the same
event loop, from `mcp.host`/`mcp.port`. Stateless JSON mode: every POST carries its own token,
so no session outlives the token that opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.mcp.audit import DENIED, AuditLog
from monitor.mcp.tokens import TokenRejected, TokenStore

PATH = "/mcp"


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: the monitor's service owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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


class McpHttpServer:
    def __init__(
        self,
        server: MCPServer,
        tokens: TokenStore,
        audit: AuditLog,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        app = server.streamable_http_app(
            streamable_http_path=PATH, stateless_http=True, json_response=True, host=host
        )
        config = uvicorn.Config(
            require_token(app, tokens, audit), log_level="warning", access_log=False, lifespan="on"
        )
        self._uvicorn = _Uvicorn(config)
        self._host, self._port = host, port
        self._task: asyncio.Task[None] | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}{PATH}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))  # bound here: port 0 picks a free one
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._task.done():
                await self._task  # raises why it could not start
                raise OSError(f"the MCP server did not start on {self._host}:{self._port}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._uvicorn.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
