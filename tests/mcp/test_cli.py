"""`puzzel-monitor mcp-token create|list|revoke`, and `puzzel-monitor mcp` on stdio driven by the
SDK's client as a desktop assistant would start it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from mcp import Client, StdioServerParameters

from monitor.app.testing import RedisServer
from monitor.cli import main
from monitor.core.clock import VirtualClock
from monitor.mcp.tokens import TokenStore
from monitor.simulator.replay import run_replay
from monitor.simulator.scenario import load_scenario
from tests.mcp.conftest import AT, SCENARIO, TENANT


@pytest.fixture
def config(tmp_path: Path, redis_server: RedisServer) -> Path:
    redis.Redis.from_url(redis_server.url).flushdb()
    path = tmp_path / "config.yaml"
    path.write_text(
        "tenants:\n"
        f"  - customer_key: '{TENANT}'\n"
        "    credentials: {user_name: u, password: p}\n"
        f"redis: {{url: '{redis_server.url}'}}\n",
        encoding="utf-8",
    )
    return path


def _all_redis_text(url: str) -> str:
    r = redis.Redis.from_url(url)
    out = []
    for key in r.scan_iter():
        out.append(key.decode())
        kind = r.type(key).decode()
        if kind == "string":
            out.append(str(r.get(key)))
        elif kind == "hash":
            out.append(str(r.hgetall(key)))
    return "\n".join(out)


def test_create_list_revoke(
    config: Path, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mcp-token", "create", "desk", "-c", str(config)]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("pzm_mcp_")
    assert token not in _all_redis_text(redis_server.url)  # only its hash is stored

    args = ["--scope", "read", "--scope", "ack", "--tenant", TENANT, "--expires", "1h"]
    assert main(["mcp-token", "create", "sup", *args, "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["mcp-token", "list", "-c", str(config)]) == 0
    listed = capsys.readouterr().out
    assert "desk  scopes=read  tenants=all  teams=all  expires=never" in listed
    assert f"sup  scopes=ack,read  tenants={TENANT}" in listed
    assert "pzm_mcp_" not in listed

    assert main(["mcp-token", "create", "x", "--tenant", "nope", "-c", str(config)]) == 2
    assert "not configured: nope" in capsys.readouterr().err
    assert main(["mcp-token", "create", "x", "--expires", "soon", "-c", str(config)]) == 2

    assert main(["mcp-token", "revoke", "desk", "-c", str(config)]) == 0
    assert main(["mcp-token", "revoke", "desk", "-c", str(config)]) == 1
    capsys.readouterr()
    assert main(["mcp-token", "list", "-c", str(config)]) == 0
    assert "desk" not in capsys.readouterr().out


def test_stdio_without_a_token_exits_2(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PUZZEL_MCP_TOKEN", raising=False)
    assert main(["mcp", "-c", str(config)]) == 2
    assert "PUZZEL_MCP_TOKEN" in capsys.readouterr().err


async def test_stdio_reads_what_run_keeps_in_redis(
    config: Path, redis_client: aioredis.Redis
) -> None:
    # the engine's memory, alerts and schedules under `run`'s own key prefix
    result = await run_replay(
        load_scenario(SCENARIO), redis=redis_client, key_prefix="pzm", stop_at=AT
    )
    assert result.pipeline is not None
    await result.pipeline.persist()
    store = TokenStore(redis_client, clock=VirtualClock(AT), key_prefix="pzm")
    token, _ = await store.create("desktop")
    command = str(Path(sys.executable).with_name("puzzel-monitor"))
    env = {**os.environ, "PUZZEL_MCP_TOKEN": token.get_secret_value()}
    params = StdioServerParameters(command=command, args=["mcp", "-c", str(config)], env=env)
    async with Client(params) as client:
        out = (await client.call_tool("agents_out_of_adherence", {})).structured_content
        assert sorted(a["agent_id"] for a in out["agents"]) == ["1102", "1103"]
        alerts = (await client.call_tool("open_alerts", {"tenant": TENANT})).structured_content
        assert alerts["count"] == 3
        conn = (await client.call_tool("connection_status", {})).structured_content
        assert conn["tenants"][0]["available"] is False
    entries = await redis_client.xrange("pzm:mcp:audit")
    assert [e[b"tool"] for _, e in entries] == [
        b"agents_out_of_adherence",
        b"open_alerts",
        b"connection_status",
    ]
