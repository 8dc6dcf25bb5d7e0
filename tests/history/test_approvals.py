"""Approving an out-of-adherence range changes that day's approved adherence by exactly the
approved seconds, and the audit trail lists it; withdrawing it restores the figure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from monitor.core.clock import SystemClock, VirtualClock
from monitor.core.keys import RedisKeys
from monitor.history.api import history_routes
from monitor.history.approvals import ApprovalRequest, ApprovalStore
from monitor.history.approvals_api import approval_routes
from monitor.history.store import HistoryStore
from monitor.http.auth import bearer_middleware
from monitor.simulator.replay import run_replay
from monitor.simulator.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "break_overrun.yaml"
TOKEN = "approvals-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANA = AUTH | {"X-Puzzel-Monitor-User": "ana.supervisor"}
APPROVALS = "/api/v1/tenants/12345/approvals"

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, redis_client: aioredis.Redis
) -> TestClient[Any, Any]:
    sc = load_scenario(SCENARIO)
    await run_replay(sc, redis=redis_client)
    store = HistoryStore(redis_client, tenants={sc.customer_key: sc.timezone}, clock=SystemClock())
    app = web.Application(middlewares=[bearer_middleware(SecretStr(TOKEN))])
    app.add_routes(history_routes(store) + approval_routes(store))
    return await aiohttp_client(app)


async def _row(client: TestClient[Any, Any]) -> dict[str, Any]:
    params = {"tenant": "12345", "from": "2026-03-02", "to": "2026-03-02"}
    body = await (await client.get("/api/v1/reports/adherence", params=params, headers=AUTH)).json()
    (row,) = body["agents"]
    return dict(row)


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        ("2026-03-02T10:15:00", "2026-03-02T10:24:00", 540),  # the pause during phone
        ("2026-03-02T10:20:00", "2026-03-02T11:00:00", 240),  # its last 4 minutes
        ("2026-03-02T09:00:00+01:00", "2026-03-02T12:00:00+01:00", 570),  # all of the day's
    ],
)
async def test_approval_adds_exactly_its_out_of_adherence_seconds(
    client: TestClient[Any, Any], start: str, end: str, seconds: int
) -> None:
    before = await _row(client)
    assert before["approved_seconds"] == 0
    assert before["approved_adherence"] == before["adherence"]
    body = {"start": start, "end": end, "reason": "sent to a team meeting"}
    resp = await client.post("/api/v1/tenants/12345/agents/1001/approvals", json=body, headers=ANA)
    assert resp.status == 201, await resp.text()
    approval = await resp.json()
    after = await _row(client)
    assert after["approved_seconds"] == seconds
    assert after["adherent_seconds"] == before["adherent_seconds"]  # the raw figure stays
    assert after["approved_adherence"] * 14_400 == pytest.approx(
        before["adherent_seconds"] + seconds
    )
    resp = await client.delete(f"{APPROVALS}/{approval['id']}", headers=ANA)
    assert resp.status == 200
    assert await _row(client) == before
    trail = (await (await client.get(APPROVALS, headers=AUTH)).json())["audit"]
    assert [(e["action"], e["by"], e["id"]) for e in trail] == [
        ("approve", "ana.supervisor", approval["id"]),
        ("withdraw", "ana.supervisor", approval["id"]),
    ]
    assert trail[0]["reason"] == "sent to a team meeting"


async def test_approvals_need_who_and_a_valid_range(client: TestClient[Any, Any]) -> None:
    url = "/api/v1/tenants/12345/agents/1001/approvals"
    body = {"start": "2026-03-02T10:15:00", "end": "2026-03-02T10:24:00", "reason": "meeting"}
    assert (await client.post(url, json=body, headers=AUTH)).status == 400
    bad = await client.post(url, json=body | {"end": "2026-03-02T10:00:00"}, headers=ANA)
    assert bad.status == 400
    assert "end='2026-03-02T10:00:00'" in (await bad.json())["error"]
    assert (await client.post(url, json=body, headers={"X-Puzzel-Monitor-User": "x"})).status == 401
    assert (await client.delete(f"{APPROVALS}/nope", headers=ANA)).status == 404


async def test_approvals_and_their_audit_trail_have_a_retention(
    redis_client: aioredis.Redis,
) -> None:
    """An approval is dropped `approvals_retention` after its range ended (or it was made or
    withdrawn), an audit entry that long after it was written; the keys expire after that."""
    clock = VirtualClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    store = ApprovalStore(
        HistoryStore(
            redis_client,
            tenants={"12345": ZoneInfo("Europe/Oslo")},
            clock=clock,
            approvals_retention=timedelta(days=10),
        )
    )
    day = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    first = await store.approve(
        "12345", ApprovalRequest("1001", day, day + timedelta(hours=1), "meeting", "ana")
    )
    clock.set(datetime(2026, 3, 5, 12, 0, tzinfo=UTC))
    later = day + timedelta(days=3)
    second = await store.approve(
        "12345", ApprovalRequest("1002", later, later + timedelta(hours=1), "course", "ana")
    )
    assert [a["id"] for a in await store.active("12345")] == [first["id"], second["id"]]
    assert len(await store.audit("12345")) == 2
    ttl = await redis_client.ttl(RedisKeys("pzm").approvals("12345"))
    assert 9 * 86400 < ttl <= 10 * 86400  # until the newer one's retention is over
    # eleven days after the first: it and its audit entry go at the next write
    clock.set(datetime(2026, 3, 13, 12, 0, tzinfo=UTC))
    await store.withdraw("12345", second["id"], "bo")
    assert [a["id"] for a in await store.active("12345")] == []
    assert set(await redis_client.hgetall(RedisKeys("pzm").approvals("12345"))) == {
        second["id"].encode()
    }
    assert [(e["action"], e["id"]) for e in await store.audit("12345")] == [
        ("approve", second["id"]),
        ("withdraw", second["id"]),
    ]
    assert await store.prune("12345") == 0
    clock.set(datetime(2026, 3, 24, 12, 0, tzinfo=UTC))
    assert await store.prune("12345") == 3  # the second approval and both its entries
    assert await store.audit("12345") == []
