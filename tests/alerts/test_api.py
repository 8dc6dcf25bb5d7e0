"""The alerts HTTP API behind the bearer middleware."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from monitor.alerts.api import alert_routes
from monitor.alerts.outbox import Outbox
from monitor.alerts.snooze import SnoozeStore
from monitor.core.clock import VirtualClock
from monitor.http.auth import bearer_middleware
from tests.alerts.helpers import T0, alert

AUTH = {"Authorization": "Bearer s3cret"}


async def make_client(redis: aioredis.Redis) -> tuple[TestClient[Any, Any], Outbox, SnoozeStore]:
    clock = VirtualClock(T0)
    outbox = Outbox(redis, sinks=["console"], clock=clock)
    snoozes = SnoozeStore(redis, clock=clock)
    app = web.Application(middlewares=[bearer_middleware(SecretStr("s3cret"))])  # type: ignore[list-item]
    app.add_routes(alert_routes(outbox.store, snoozes, clock=clock))
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client, outbox, snoozes


async def test_api_requires_the_bearer_token(redis_client: aioredis.Redis) -> None:
    """Without the token the alert API answers 401."""
    client, _, _ = await make_client(redis_client)
    try:
        resp = await client.get("/api/v1/alerts")
        assert resp.status == 401
        resp = await client.post("/api/v1/tenants/1/agents/2/snooze", json={"duration": "1h"})
        assert resp.status == 401
    finally:
        await client.close()


async def test_list_ack_snooze_and_unsnooze(redis_client: aioredis.Redis) -> None:
    """Open alerts are listed with their mutes; ack, snooze and DELETE change those mutes."""
    client, outbox, snoozes = await make_client(redis_client)
    a = alert("1001")
    await outbox.publish([a, alert("1002"), alert("1003", status="resolved")])
    try:
        resp = await client.get("/api/v1/alerts", headers=AUTH)
        body = await resp.json()
        assert resp.status == 200
        assert sorted(x["labels"]["agent"] for x in body["alerts"]) == ["1001", "1002"]

        resp = await client.post(f"/api/v1/alerts/{a.fingerprint}/ack", headers=AUTH)
        assert resp.status == 200
        resp = await client.post(
            f"/api/v1/alerts/{a.fingerprint}/snooze", headers=AUTH, json={"duration": "2h"}
        )
        assert (await resp.json())["until"] == "2026-03-02T11:00:00.000Z"
        listed = {
            x["fingerprint"]: {m["kind"] for m in x["mutes"]}
            for x in (await (await client.get("/api/v1/alerts", headers=AUTH)).json())["alerts"]
        }
        assert listed[a.fingerprint] == {"ack", "snooze"}

        resp = await client.delete(f"/api/v1/alerts/{a.fingerprint}/snooze", headers=AUTH)
        assert (await resp.json()) == {"removed": True}
        assert [m.kind for m in await snoozes.mutes(a)] == ["ack"]

        until = (T0 + timedelta(hours=1)).isoformat()
        resp = await client.post(
            "/api/v1/tenants/12345/agents/1002/snooze", headers=AUTH, json={"until": until}
        )
        assert resp.status == 200
        assert await snoozes.muted(alert("1002")) == "agent_snooze"
        resp = await client.delete("/api/v1/tenants/12345/agents/1002/snooze", headers=AUTH)
        assert await snoozes.muted(alert("1002")) is None
    finally:
        await client.close()


async def test_bad_requests_are_explained(redis_client: aioredis.Redis) -> None:
    """Unknown alerts are 404; a missing, past or malformed snooze end is 400 with a reason."""
    client, outbox, _ = await make_client(redis_client)
    a = alert("1001")
    await outbox.publish([a])
    try:
        resp = await client.post("/api/v1/alerts/ffff/ack", headers=AUTH)
        assert resp.status == 404
        url = f"/api/v1/alerts/{a.fingerprint}/snooze"
        resp = await client.post(url, headers=AUTH, json={})
        assert resp.status == 400
        assert "until" in (await resp.json())["error"]
        resp = await client.post(url, headers=AUTH, json={"until": "2020-01-01T00:00:00Z"})
        assert "future" in (await resp.json())["error"]
        resp = await client.post(url, headers=AUTH, json={"duration": "soon"})
        assert "duration" in (await resp.json())["error"]
    finally:
        await client.close()
