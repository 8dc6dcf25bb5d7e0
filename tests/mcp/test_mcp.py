"""The MCP server driven by the SDK's own client, in-process and over streamable HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic import SecretStr

from monitor.mcp.http import McpEndpoint
from monitor.mcp.server import build_server
from tests.mcp.conftest import TENANT, Monitored
from tests.redis_server import free_port

READ_TOOLS = {
    "agents_out_of_adherence",
    "agent_status",
    "queue_status",
    "team_adherence",
    "open_alerts",
    "connection_status",
}
WRITE_TOOLS = {
    "acknowledge_alert",
    "snooze_alert",
    "unsnooze_alert",
    "approve_exception",
    "withdraw_approval",
}


@asynccontextmanager
async def in_process(m: Monitored, token: SecretStr | None) -> AsyncIterator[Client]:
    async with Client(build_server(m.tools, m.tokens, m.audit, token=token)) as client:
        yield client


@dataclass(frozen=True)
class Served:
    url: str


@asynccontextmanager
async def serving(m: Monitored) -> AsyncIterator[Served]:
    """The endpoint mounted on a loopback aiohttp server, as the monitor mounts it."""
    endpoint = McpEndpoint(build_server(m.tools, m.tokens, m.audit), m.tokens, m.audit)
    app = web.Application()
    app.add_routes(endpoint.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await endpoint.start()
    try:
        yield Served(f"http://127.0.0.1:{port}/mcp")
    finally:
        await endpoint.stop()
        await runner.cleanup()


@asynccontextmanager
async def over_http(m: Monitored, token: SecretStr | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    async with (
        serving(m) as http,
        create_mcp_http_client(headers=headers) as httpx,
        Client(streamable_http_client(http.url, http_client=httpx)) as client,
    ):
        yield client


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    answer: dict[str, Any] = result.structured_content
    return answer


async def refused(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


async def check_read_tools(client: Client) -> str:
    """Every read tool against the replayed 10:08; returns the open queue alert's fingerprint."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    assert all(t.description and t.input_schema["type"] == "object" for t in tools.values())
    assert tools["agent_status"].input_schema["required"] == ["tenant", "agent_id"]

    out = await call(client, "agents_out_of_adherence", tenant=TENANT)
    assert {(a["agent_id"], a["name"], a["team"], a["state"]) for a in out["agents"]} == {
        ("1102", "Ola Berg", "Support", "available"),
        ("1103", "Kari Hansen", "Support", "logged_off"),
    }
    assert (await call(client, "agents_out_of_adherence", team="Sales"))["count"] == 0

    agent = await call(client, "agent_status", tenant=TENANT, agent_id="1102")
    assert (agent["adherent"], agent["scheduled_activity"]) == (False, "break")
    assert [s["activity"] for s in agent["schedule"]] == ["phone", "break", "phone"]
    assert [e["rule"] for e in agent["open_exceptions"]] == ["out_of_adherence"]
    assert set(agent) >= {"agent_id", "name", "team", "state", "state_since"}

    queues = {q["queue_id"]: q for q in (await call(client, "queue_status"))["queues"]}
    assert queues["4302"]["longest_wait_seconds"] == 300
    assert queues["4302"]["name"] == "Sales NO"

    teams = {t["team"]: t for t in (await call(client, "team_adherence"))["teams"]}
    assert teams["Sales"]["adherence"] == 1.0
    assert 0 < teams["Support"]["adherence"] < 1

    alerts = (await call(client, "open_alerts", tenant=TENANT))["alerts"]
    assert sorted((a["rule"], a["subject"]) for a in alerts) == [
        ("out_of_adherence", "agent 1102"),
        ("out_of_adherence", "agent 1103"),
        ("queue_wait_above", "queue 4302"),
    ]

    (conn,) = (await call(client, "connection_status"))["tenants"]
    assert conn["available"]
    assert conn["polls"]["user_states"]["up"]
    assert conn["endpoints_supported"]["user_states"] is True
    return next(a["fingerprint"] for a in alerts if a["rule"] == "queue_wait_above")


async def test_in_process_read_tools_and_a_snooze(monitored: Monitored) -> None:
    token, _ = await monitored.tokens.create("supervisor", scopes=["read", "ack"])
    async with in_process(monitored, token) as client:
        fp = await check_read_tools(client)
        snoozed = await call(client, "snooze_alert", fingerprint=fp, duration="45m")
        assert snoozed["by"] == "mcp:supervisor"
        (alert,) = [
            a for a in (await call(client, "open_alerts"))["alerts"] if a["fingerprint"] == fp
        ]
        assert [m["kind"] for m in alert["muted"]] == ["snooze"]
        assert (await call(client, "unsnooze_alert", fingerprint=fp))["removed"] is True
        assert "invalid" in await refused(client, "snooze_alert", fingerprint=fp)  # no duration


async def test_over_http_read_tools_and_an_ack(monitored: Monitored) -> None:
    token, _ = await monitored.tokens.create("desk", scopes=["read", "ack"])
    async with over_http(monitored, token) as client:
        fp = await check_read_tools(client)
        acked = await call(client, "acknowledge_alert", fingerprint=fp, duration="2h")
        assert acked["kind"] == "ack"
        assert "not found" in await refused(client, "acknowledge_alert", fingerprint="f" * 16)


async def test_refusals_in_process(monitored: Monitored) -> None:
    reader, _ = await monitored.tokens.create("reader")  # read-only is the default
    other, _ = await monitored.tokens.create("other", scopes=["read", "ack"], tenants=["999"])
    sales, _ = await monitored.tokens.create("sales", teams=["Sales"])
    brief, _ = await monitored.tokens.create("brief", ttl=timedelta(minutes=10))
    async with in_process(monitored, reader) as client:
        fp = (await call(client, "open_alerts"))["alerts"][0]["fingerprint"]
        assert "lacks the 'ack' scope" in await refused(
            client, "snooze_alert", fingerprint=fp, duration="1h"
        )
    async with in_process(monitored, other) as client:
        assert "tenant '12345'" in await refused(client, "open_alerts", tenant=TENANT)
        assert "denied" in await refused(client, "acknowledge_alert", fingerprint=fp)
        assert (await call(client, "open_alerts"))["count"] == 0  # nothing in its reach
    async with in_process(monitored, sales) as client:
        assert (await call(client, "agents_out_of_adherence"))["count"] == 0
        assert "team 'Support'" in await refused(
            client, "agent_status", tenant=TENANT, agent_id="1102"
        )
    monitored.clock.advance(11 * 60)
    async with in_process(monitored, brief) as client:
        assert "expired" in await refused(client, "open_alerts")
    async with in_process(monitored, None) as client:
        assert "token is required" in await refused(client, "open_alerts")

    entries = await monitored.audit.entries()
    assert [(e["token"], e["tool"], e["code"]) for e in entries] == [
        ("reader", "open_alerts", "ok"),
        ("reader", "snooze_alert", "denied"),
        ("other", "open_alerts", "denied"),
        ("other", "acknowledge_alert", "denied"),
        ("other", "open_alerts", "ok"),
        ("sales", "agents_out_of_adherence", "ok"),
        ("sales", "agent_status", "denied"),
        ("", "open_alerts", "denied"),  # expired: no valid token, so no name
        ("", "open_alerts", "denied"),
    ]
    assert '"duration":"1h"' in entries[1]["arguments"]


async def test_refusals_over_http(monitored: Monitored) -> None:
    reader, _ = await monitored.tokens.create("reader")
    brief, _ = await monitored.tokens.create("brief", ttl=timedelta(minutes=10))
    async with over_http(monitored, reader) as client:
        assert "lacks the 'ack' scope" in await refused(client, "unsnooze_alert", fingerprint="x")
        assert "agent_id" in await refused(client, "agent_status", tenant=TENANT)  # the schema
        assert "Unknown tool" in await refused(client, "drop_tables")
    await monitored.tokens.revoke("reader")
    monitored.clock.advance(11 * 60)
    # without a valid token not even the tool list: 401 before the SDK
    list_tools = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    async with serving(monitored) as http, create_mcp_http_client() as raw:
        for given, why in [
            (None, "token is required"),
            ("pzm_mcp_guessed", "unknown or revoked"),
            (reader.get_secret_value(), "unknown or revoked"),
            (brief.get_secret_value(), "expired"),
        ]:
            auth = {"Authorization": f"Bearer {given}"} if given else {}
            answer = await raw.post(http.url, json=list_tools, headers={**accept, **auth})
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"] == "Bearer"
            assert why in answer.json()["error"]
    codes = [(e["token"], e["tool"], e["code"]) for e in await monitored.audit.entries()]
    assert codes == [
        ("reader", "unsnooze_alert", "denied"),
        # refused by the SDK before the tool ran, audited all the same
        ("reader", "agent_status", "invalid"),
        ("reader", "drop_tables", "invalid"),
        *[("", "(http)", "denied")] * 4,
    ]


async def test_the_token_never_appears_in_answers_logs_or_audit(
    monitored: Monitored, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token, _ = await monitored.tokens.create("desk", scopes=["read", "ack"])
    secret = token.get_secret_value()
    answers: list[str] = []
    async with over_http(monitored, token) as client:
        for tool in sorted(READ_TOOLS - {"agent_status"}):
            answers.append(repr(await client.call_tool(tool, {})))
        answers.append(repr(await client.call_tool("agent_status", {"tenant": TENANT})))  # invalid
        answers.append(repr(await client.call_tool("snooze_alert", {"fingerprint": "nope"})))
    assert "1102" in "".join(answers)  # the answers are there; the token is not
    captured = capsys.readouterr()
    seen = "".join(answers) + captured.out + captured.err + caplog.text
    seen += (
        repr(await monitored.audit.entries()) + repr(token) + repr(await monitored.tokens.list())
    )
    assert secret not in seen
