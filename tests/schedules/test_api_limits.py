"""The schedule API's edges: an unknown tenant's 404 is valid JSON whatever its name, and the
documented 1 MiB body limit holds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from monitor.http.auth import bearer_middleware
from monitor.schedules.api import schedule_routes
from monitor.schedules.importers import DEFAULT_ACTIVITIES
from monitor.schedules.store import ScheduleStore
from tests.schedules.conftest import OSLO

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: ScheduleStore) -> TestClient[Any, Any]:
    app = web.Application(middlewares=[bearer_middleware(SecretStr(TOKEN))])
    app.add_routes(
        schedule_routes(store, tenants={"t1": OSLO}, known_activities=set(DEFAULT_ACTIVITIES))
    )
    return await aiohttp_client(app)


@pytest.mark.parametrize("tenant", ['we"ird', "back\\slash", "plain"])
async def test_unknown_tenant_404_is_valid_json(client: TestClient[Any, Any], tenant: str) -> None:
    resp = await client.get(
        f"/api/v1/tenants/{quote(tenant)}/schedules?date=2026-03-02", headers=AUTH
    )
    assert resp.status == 404
    body = await resp.json()
    assert body == {"error": f"unknown tenant {tenant}"}


async def test_a_body_over_1_mib_is_refused_with_413(client: TestClient[Any, Any]) -> None:
    resp = await client.put(
        "/api/v1/tenants/t1/schedules",
        data=b"[" + b" " * (1024 * 1024) + b"]",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status == 413
