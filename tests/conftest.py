from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

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
