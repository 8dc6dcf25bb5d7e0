"""`doctor` and the alert sinks: the Slack bot token is tried with auth.test (nothing posted),
webhook sinks are listed but not called, no token or URL is ever printed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from monitor.app.doctor import EXIT_FAILED, EXIT_OK
from tests.app.conftest import SimSite, SiteFactory
from tests.redis_server import free_port

GOOD = "xoxb-good-d0ctor-token"
LIMITED = "xoxb-no-chat-write-token"
TEAMS_URL = "https://prod-42.westeurope.logic.azure.com/workflows/x/triggers/manual?sig=t3amsSig"


class SlackAuth:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def auth_test(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls.append(request.path)
        if token == GOOD:
            scopes = "chat:write,users:read,users:read.email"
        elif token == LIMITED:
            scopes = "users:read"
        else:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        answer = {"ok": True, "user": "puzzelbot", "team": "Contoso", "user_id": "U0BOT"}
        return web.json_response(answer, headers={"x-oauth-scopes": scopes})


@pytest.fixture
async def slack() -> AsyncIterator[tuple[SlackAuth, str]]:
    fake = SlackAuth()
    app = web.Application()
    app.router.add_post("/api/auth.test", fake.auth_test)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, f"http://127.0.0.1:{port}/api"
    await runner.cleanup()


def config_with(s: SimSite, sinks: dict[str, Any]) -> Path:
    path = s.tmp / "config.yaml"
    doc = {"tenants": [s.tenant()], "alerting": {"sinks": sinks}}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def sink_lines(out: str) -> dict[str, str]:
    lines = out.split("alert sinks\n", 1)[1].splitlines()
    return {line.split()[0]: line for line in lines if line.startswith("  ")}


async def test_a_good_bot_token_is_ok_and_nothing_secret_is_printed(
    site: SiteFactory, slack: tuple[SlackAuth, str]
) -> None:
    fake, api = slack
    s = await site("full")
    sinks = {
        "agents": {"type": "slack_dm", "bot_token": GOOD, "api_url": api},
        "teams": {"type": "teams", "webhook_url": TEAMS_URL},
    }
    result = await s.doctor(config_with(s, sinks))
    assert result.code == EXIT_OK, result.out
    lines = sink_lines(result.out)
    assert "slack_dm" in lines["agents"]
    assert "ok (bot puzzelbot in workspace Contoso)" in lines["agents"]
    assert "not called (a check would send a message)" in lines["teams"]
    assert fake.calls == ["/api/auth.test"]
    printed = result.out + result.err
    assert GOOD not in printed
    assert "t3amsSig" not in printed
    assert "logic.azure.com" not in printed


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("xoxb-revoked-token", "auth problem (auth.test: invalid_auth)"),
        (LIMITED, "auth problem (bot puzzelbot in workspace Contoso; missing scope chat:write)"),
    ],
)
async def test_a_bad_or_limited_bot_token_fails_doctor(
    site: SiteFactory, slack: tuple[SlackAuth, str], token: str, says: str
) -> None:
    _, api = slack
    s = await site("full")
    result = await s.doctor(
        config_with(s, {"agents": {"type": "slack_dm", "bot_token": token, "api_url": api}})
    )
    assert result.code == EXIT_FAILED
    assert says in sink_lines(result.out)["agents"]
    assert token not in result.out + result.err


async def test_an_unreachable_slack_is_an_error_naming_no_url(site: SiteFactory) -> None:
    s = await site("full")
    api = f"http://127.0.0.1:{free_port()}/api"
    result = await s.doctor(
        config_with(s, {"agents": {"type": "slack_dm", "bot_token": GOOD, "api_url": api}})
    )
    assert result.code == EXIT_FAILED
    assert "error (auth.test: ClientConnectorError)" in sink_lines(result.out)["agents"]
