"""Fixtures for the simulator tests: a random-mode simulator on a virtual clock, served over
real loopback HTTP with pytest-aiohttp's test server, and helpers to log in to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from monitor.core.clock import VirtualClock
from monitor.simulator import Simulator
from monitor.simulator.app import base_urls, create_app

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Oslo, mid-shift


@dataclass
class Served:
    sim: Simulator
    clock: VirtualClock
    server: TestServer
    http: aiohttp.ClientSession
    urls: dict[str, str]

    @property
    def api(self) -> str:
        return self.urls["api"]

    @property
    def key(self) -> str:
        return self.sim.credentials.customer_key

    async def login(self) -> str:
        creds = self.sim.credentials
        async with self.http.post(
            self.urls["auth"] + "/api/Authenticate/LogIn",
            json={
                "customerKey": creds.customer_key,
                "userName": creds.user_name,
                "password": creds.password.get_secret_value(),
            },
        ) as r:
            assert r.status == 200
            body = await r.json()
        token: str = body["accessToken"]
        return token

    async def get(self, path: str, token: str | None, **params: Any) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = await self.http.get(self.api + path, headers=headers, params=params or None)
        await r.read()
        return r


ServeFactory = Callable[[Simulator, VirtualClock], Awaitable[Served]]


@pytest.fixture
async def serve(aiohttp_server: Any) -> AsyncIterator[ServeFactory]:
    """A factory serving a simulator over HTTP; sessions are closed afterwards."""
    sessions: list[aiohttp.ClientSession] = []

    async def factory(sim: Simulator, clock: VirtualClock) -> Served:
        server = await aiohttp_server(create_app(sim, clock=clock))
        http = aiohttp.ClientSession()
        sessions.append(http)
        root = str(server.make_url("")).rstrip("/")
        return Served(sim, clock, server, http, base_urls(root))

    yield factory
    for s in sessions:
        await s.close()


@pytest.fixture
async def served(serve: ServeFactory) -> Served:
    """A 40-agent random-mode simulator at 10:00 Oslo time, served over HTTP."""
    clock = VirtualClock(START)
    sim = Simulator.random(agents=40, groups=4, queues=3, seed=7, clock=clock)
    return await serve(sim, clock)
