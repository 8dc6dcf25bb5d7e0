"""`run`'s monitor with `mcp.enabled`: the MCP endpoint reads the live pollers and snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic import SecretStr

from monitor.app.config import ApiConfig, McpConfig
from monitor.app.wiring import Monitor
from monitor.mcp.tokens import TokenStore
from monitor.rules.loader import ruleset_from_mapping
from tests.simserver import T0, SimServer, config_for


async def test_run_serves_mcp_over_the_live_state(
    make_sim_server: Callable[..., Any], redis_client: aioredis.Redis
) -> None:
    server: SimServer = await make_sim_server()
    config = config_for(server).model_copy(
        update={"mcp": McpConfig(enabled=True), "api": ApiConfig(token=SecretStr("api-t0ken"))}
    )
    monitor = Monitor(
        config,
        clock=server.clock,
        redis=redis_client,
        ruleset=ruleset_from_mapping({"stale_data": {"after": "1m"}}, only_listed=True),
        host="127.0.0.1",
        port=0,
    )
    token, _ = await TokenStore(redis_client, clock=server.clock).create("ops")
    await monitor.start()
    try:
        assert monitor.mcp is not None
        await monitor.service.scheduler.run_until(T0 + timedelta(minutes=1))
        # on the monitor's own port, next to /metrics and the API
        url = f"http://127.0.0.1:{monitor.service.bound_port}/mcp"
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        async with (
            create_mcp_http_client(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            conn = (await client.call_tool("connection_status", {})).structured_content
            queues = (await client.call_tool("queue_status", {})).structured_content
        # one port, two doors: the API's token does not open /mcp, nor an MCP token the API
        async with create_mcp_http_client() as raw:
            api_on_mcp = await raw.post(url, json={}, headers={"Authorization": "Bearer api-t0ken"})
            mcp_on_api = await raw.get(url.replace("/mcp", "/api/v1/alerts"), headers=headers)
            api_on_api = await raw.get(
                url.replace("/mcp", "/api/v1/alerts"), headers={"Authorization": "Bearer api-t0ken"}
            )
    finally:
        await monitor.stop(grace=0)
    assert (api_on_mcp.status_code, mcp_on_api.status_code, api_on_api.status_code) == (
        401,
        401,
        200,
    )
    (tenant,) = conn["tenants"]
    assert tenant["available"] is True
    assert tenant["polls"]["user_states"]["polls"] >= 1
    assert queues["count"] > 0  # the simulator's queues, from the latest live poll
    assert all(q["queue_id"] and q["as_of"] for q in queues["queues"])
    assert queues["no_queue_data_for"] == []
