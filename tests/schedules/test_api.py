"""The schedule HTTP API validates in full, writes atomically and sits behind bearer auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from monitor.http.auth import bearer_middleware
from monitor.schedules.api import schedule_routes
from monitor.schedules.importers import DEFAULT_ACTIVITIES
from monitor.schedules.store import ScheduleStore
from tests.schedules.conftest import OSLO, dump_all

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "/api/v1/tenants/t1"

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]

GOOD = [
    {"agent": "1001", "date": "2026-03-02", "segments": [["08:00", "12:00", "phone"]]},
    {"agent": "1002", "date": "2026-03-02", "segments": [["22:00", "06:00", "phone"]]},
]


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: ScheduleStore) -> TestClient[Any, Any]:
    app = web.Application(middlewares=[bearer_middleware(SecretStr(TOKEN))])
    app.add_routes(
        schedule_routes(store, tenants={"t1": OSLO}, known_activities=set(DEFAULT_ACTIVITIES))
    )
    return await aiohttp_client(app)


async def test_requests_without_the_token_are_refused(
    client: TestClient[Any, Any], redis_client: aioredis.Redis
) -> None:
    """No or a wrong bearer token gives 401 and writes nothing."""
    resp = await client.put(f"{BASE}/schedules", json=GOOD)
    assert resp.status == 401
    resp = await client.get(
        f"{BASE}/schedules?date=2026-03-02", headers={"Authorization": "Bearer nope"}
    )
    assert resp.status == 401
    assert await redis_client.keys("*") == []


async def test_put_json_then_get_the_day(client: TestClient[Any, Any]) -> None:
    """A JSON PUT is applied and the day reads back in local time, night shift included."""
    resp = await client.put(f"{BASE}/schedules", json=GOOD, headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["segments"], body["agents"], body["dates"]) == (
        2,
        ["1001", "1002"],
        ["2026-03-02"],
    )
    assert body["version"] == 1
    resp = await client.get(f"{BASE}/schedules", params={"date": "2026-03-03"}, headers=AUTH)
    day = await resp.json()
    assert day["agents"] == {
        "1002": [
            {
                "start": "2026-03-02T22:00:00+01:00",
                "end": "2026-03-03T06:00:00+01:00",
                "activity": "phone",
                "duration_seconds": 8 * 3600,
            }
        ]
    }
    resp = await client.get(
        f"{BASE}/schedules", params={"date": "2026-03-02", "agent": "1001"}, headers=AUTH
    )
    assert list((await resp.json())["agents"]) == ["1001"]
    resp = await client.get(f"{BASE}/agents/1001/schedule?date=2026-03-02", headers=AUTH)
    agent = await resp.json()
    assert [(s["start"], s["activity"]) for s in agent["segments"]] == [
        ("2026-03-02T08:00:00+01:00", "phone")
    ]


async def test_put_csv_replaces_the_agent_day(client: TestClient[Any, Any]) -> None:
    """A CSV PUT replaces what the agent had on that date."""
    await client.put(f"{BASE}/schedules", json=GOOD, headers=AUTH)
    csv = "agent,date,start,end,activity\n1001,2026-03-02,09:00,10:00,training\n"
    resp = await client.put(
        f"{BASE}/schedules", data=csv, headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["replaced"] == 1
    resp = await client.get(f"{BASE}/agents/1001/schedule?date=2026-03-02", headers=AUTH)
    assert [s["activity"] for s in (await resp.json())["segments"]] == ["training"]


async def test_bad_body_gives_400_with_every_issue_and_no_write(
    client: TestClient[Any, Any], redis_client: aioredis.Redis
) -> None:
    """An invalid schedule is answered 400 listing each issue by field; Redis is unchanged."""
    await client.put(f"{BASE}/schedules", json=GOOD, headers=AUTH)
    before = await dump_all(redis_client)
    bad = [
        {"agent": "1001", "date": "2026-03-29", "segments": [["02:30", "06:00", "phone"]]},
        {"agent": "1001", "date": "2026-03-02", "segments": [["08:00", "09:00", "nap"]]},
    ]
    resp = await client.put(f"{BASE}/schedules", json=bad, headers=AUTH)
    assert resp.status == 400
    issues = (await resp.json())["issues"]
    assert [(i["source"], i["where"]) for i in issues] == [
        ("request body", "[0].segments[0][0]"),
        ("request body", "[1].segments[0][2]"),
    ]
    assert "does not exist" in issues[0]["message"]
    assert await dump_all(redis_client) == before


async def test_unknown_tenant_missing_date_and_content_type(client: TestClient[Any, Any]) -> None:
    """Unknown tenants are 404, a missing date 400, an unsupported body type 415."""
    resp = await client.get("/api/v1/tenants/nope/schedules?date=2026-03-02", headers=AUTH)
    assert resp.status == 404
    resp = await client.get(f"{BASE}/schedules", headers=AUTH)
    assert resp.status == 400
    assert "date=YYYY-MM-DD" in (await resp.json())["error"]
    resp = await client.put(
        f"{BASE}/schedules", data=b"x", headers={**AUTH, "Content-Type": "image/png"}
    )
    assert resp.status == 415


async def test_an_impossible_date_is_named_not_called_missing(client: TestClient[Any, Any]) -> None:
    """date=2026-13-01 is a 400 that echoes the value, not "date is required"."""
    resp = await client.get(f"{BASE}/schedules?date=2026-13-01", headers=AUTH)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert "'2026-13-01'" in error
    assert "required" not in error


async def test_a_header_only_csv_is_refused_and_writes_nothing(
    client: TestClient[Any, Any], redis_client: aioredis.Redis
) -> None:
    """PUT of a CSV with only its header is a 400, and the schedule version stays unset."""
    resp = await client.put(
        f"{BASE}/schedules",
        data=b"agent,start,end,activity\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert resp.status == 400
    assert "nothing to import" in await resp.text()
    assert await redis_client.keys("*") == []
