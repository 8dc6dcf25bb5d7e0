"""End to end, in real time: the scripted simulator over HTTP plays a break overrun, the
assembled monitor (real redis-server) fires `break_overrun` to a loopback webhook receiver; a
supervisor approves the agent's time range with `POST /api/v1/...` while the exception is
open, and the alert resolves exactly once, through the outbox, saying who approved it. The
audit trail lists the approval; withdrawing it once the agent is back fires nothing again."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from pydantic import SecretStr

from monitor.app.config import ApiConfig
from monitor.core.clock import SystemClock
from tests.faults.harness import TZ, Break, Rig, start_rig, wait_for
from tests.redis_server import RedisServer

AGENT = "1001"
BACK = 12.0  # the agent is back this many seconds after the start
TOKEN = "approvals-e2e-token"
WHO = {"X-Puzzel-Monitor-User": "ana.supervisor", "Authorization": f"Bearer {TOKEN}"}


async def _call(rig: Rig, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"http://127.0.0.1:{rig.port}{path}", json=body, headers=WHO
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_an_approval_resolves_the_open_alert_once(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    t0 = SystemClock().now()
    rig = await start_rig([Break(AGENT, ends=2, back=BACK)], redis_server.url, start=False)
    rig.config = rig.config.model_copy(update={"api": ApiConfig(token=SecretStr(TOKEN))})
    await rig.new_monitor().start()
    back = t0 + timedelta(seconds=BACK)
    try:
        await wait_for("the firing", lambda: rig.count(AGENT, "firing") == 1)
        assert rig.count(AGENT, "resolved") == 0
        now = SystemClock().now()
        body = {
            "start": (now - timedelta(minutes=5)).isoformat(),
            "end": (now + timedelta(minutes=5)).isoformat(),
            "reason": "sent to a team meeting",
        }
        status, approval = await _call(
            rig, "POST", f"/api/v1/tenants/12345/agents/{AGENT}/approvals", body
        )
        assert status == 201, approval
        took = await wait_for("the resolve", lambda: rig.count(AGENT, "resolved") == 1, 10)
        print(f"resolved {took:.1f} s after the approval")
        (resolved,) = [i for _, i in rig.items() if i["status"] == "resolved"]
        assert "approved by ana.supervisor: sent to a team meeting" in json.dumps(resolved)
        # resolved while the agent is still on pause: the approval, not the agent, ended it
        assert SystemClock().now() < back

        # the day's record of the exception says how it ended
        today = SystemClock().now().astimezone(TZ).date()  # (and yesterday: near midnight)
        days = f"from={today - timedelta(days=1)}&to={today}"
        report = f"/api/v1/reports/adherence?tenant=12345&{days}"
        status, body = await _call(rig, "GET", report)
        assert status == 200
        assert [(e["rule"], e["resolution"]) for e in body["exceptions"]] == [
            ("break_overrun", "approved by ana.supervisor: sent to a team meeting")
        ]
        status, listing = await _call(rig, "GET", "/api/v1/tenants/12345/approvals")
        assert status == 200
        assert [(e["action"], e["by"], e["id"]) for e in listing["audit"]] == [
            ("approve", "ana.supervisor", approval["id"])
        ]
        await asyncio.sleep((back - SystemClock().now()).total_seconds() + 2)  # the agent is back
        status, _ = await _call(rig, "DELETE", f"/api/v1/tenants/12345/approvals/{approval['id']}")
        assert status == 200
        await asyncio.sleep(5)  # more than break_overrun's `after` and a few polls
        assert rig.count(AGENT, "firing") == 1
        assert rig.count(AGENT, "resolved") == 1
        status, listing = await _call(rig, "GET", "/api/v1/tenants/12345/approvals")
        assert [e["action"] for e in listing["audit"]] == ["approve", "withdraw"]
    finally:
        await rig.close()
