"""The ASGI→aiohttp bridge that mounts the SDK's transport on the monitor's port: request bodies
streamed in, responses streamed out chunk by chunk, the app's lifespan run from start to stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from monitor.app.config import McpConfig
from monitor.mcp.http import AsgiBridge
from tests.redis_server import free_port


def streaming_app(events: list[str], gate: asyncio.Event) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "size": len(body),
                "tail": body[-5:].decode(),
                "auth": request.headers.get("authorization"),
            },
            status_code=201,
            headers={"X-Echo": "yes"},
        )

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield b"data: one\n\n"
                await gate.wait()  # the client has the first event before the second exists
                yield b"data: two\n\n"
            finally:
                events.append("stream closed")

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    routes = [Route("/mcp", echo, methods=["POST"]), Route("/mcp", stream, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


@asynccontextmanager
async def mounted(bridge: AsgiBridge) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/mcp", bridge.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        await runner.cleanup()


async def test_bodies_stream_both_ways_and_the_lifespan_brackets_serving() -> None:
    events: list[str] = []
    gate = asyncio.Event()
    bridge = AsgiBridge(streaming_app(events, gate))
    async with mounted(bridge) as url, aiohttp.ClientSession() as http:
        async with http.post(url, data=b"x") as before:
            assert before.status == 503  # not started: no lifespan, no requests
        await bridge.start()
        assert events == ["startup"]
        big = b"a" * 300_000 + b"12345"  # several chunks of the bridge's reads
        auth = {"Authorization": "Bearer t"}
        async with http.post(f"{url}?x=1", data=big, headers=auth) as answer:
            assert answer.status == 201
            assert answer.headers["X-Echo"] == "yes"
            got = await answer.json()
        assert got == {
            "method": "POST",
            "path": "/mcp",
            "query": "x=1",
            "size": len(big),
            "tail": "12345",
            "auth": "Bearer t",
        }
        async with http.get(url) as sse:
            assert sse.headers["Content-Type"].startswith("text/event-stream")
            first = await asyncio.wait_for(sse.content.readuntil(b"\n\n"), 5)
            assert first == b"data: one\n\n"  # arrived while the app still streams
            gate.set()
            assert await asyncio.wait_for(sse.content.read(), 5) == b"data: two\n\n"
        await bridge.stop()
    assert events == ["startup", "stream closed", "shutdown"]


async def test_a_client_that_leaves_a_stream_ends_it() -> None:
    """The app hears `http.disconnect` when the client goes, so an open SSE stream ends."""
    events: list[str] = []
    bridge = AsgiBridge(streaming_app(events, asyncio.Event()))  # the gate never opens
    async with mounted(bridge) as url:
        await bridge.start()
        async with aiohttp.ClientSession() as http, http.get(url) as sse:
            assert await asyncio.wait_for(sse.content.readuntil(b"\n\n"), 5) == b"data: one\n\n"
        for _ in range(60):  # the bridge looks every second
            if "stream closed" in events:
                break
            await asyncio.sleep(0.05)
        assert events == ["startup", "stream closed"]  # before anything else stops
        await bridge.stop()
    assert events == ["startup", "stream closed", "shutdown"]


async def test_an_app_that_fails_to_start_says_why() -> None:
    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no session manager today")
        yield

    bridge = AsgiBridge(Starlette(lifespan=broken))
    with pytest.raises(RuntimeError, match="no session manager today"):
        await bridge.start()


@pytest.mark.parametrize("field", ["port", "host"])
def test_the_old_own_port_setting_is_refused_with_where_mcp_went(field: str) -> None:
    value: Callable[[], Any] = {"port": lambda: 8914, "host": lambda: "127.0.0.1"}[field]
    with pytest.raises(ValueError, match=rf"mcp\.{field} is no longer used.*exporter\.port"):
        McpConfig.model_validate({"enabled": True, field: value()})
