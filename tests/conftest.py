from __future__ import annotations

import gc
import logging
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import structlog

from tests.redis_server import RedisServer
from tests.simserver import SimServers


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server for the test session (append-only, so a restart keeps data)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make test installs it when run as root)")
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client on the private server, with the database flushed before each test."""
    if redis_server.proc is None:
        redis_server.start()
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=False)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def make_sim_server() -> AsyncIterator[Callable[..., Any]]:
    """Start simulators served on loopback (VirtualClock at T0); closed after the test."""
    servers = SimServers()
    yield servers.start
    await servers.close()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands run in-process configure logging as they would in production (`doctor`,
    `rules check`, `mcp-token`): undo it, so no test sees another's log level."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("aiohttp.access").level
    yield
    structlog.configure(**saved)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access)


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    """`run` and `replay` run in-process tune the collector for the process (`tune_gc`): undo
    it, so no test runs under another's settings."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
