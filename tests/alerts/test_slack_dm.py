"""The Slack DM sink against a loopback Slack Web API that checks every request exactly:
addressing by user id and by e-mail (looked up once), drops counted, 429 and `ok: false`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from monitor.alerts.config import AlertingConfig
from monitor.alerts.service import AlertingService
from monitor.alerts.sinks.base import SinkError
from monitor.alerts.sinks.slack_dm import SlackDmSink
from monitor.alerts.slack_users import SlackUserStore
from monitor.app.config import ConfigError, load_config
from monitor.core.clock import SystemClock
from monitor.engine.model import RuleName
from tests.alerts.helpers import Receiver, alert, transition
from tests.redis_server import free_port

TOKEN = "xoxb-1111-2222-s3cretbot"
USERS = {"bo@example.com": "U0BO", "kari@example.com": "U0KARI"}


class SlackApi:
    """`chat.postMessage` and `users.lookupByEmail` as Slack documents them: POST, bearer bot
    token, JSON (postMessage) or a form (lookupByEmail); HTTP 200 with `ok` true or false."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lookups: list[str] = []
        self.problems: list[str] = []
        self.calls: list[tuple[float, str]] = []
        self.error: str | None = None  # answer postMessage with ok: false and this error
        self.throttle = 0  # answer this many calls with 429 Retry-After: 1

    def _auth(self, request: web.Request) -> str | None:
        if request.method != "POST":
            return f"{request.method} instead of POST"
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return "not the bot token as a bearer"
        return None

    async def post_message(self, request: web.Request) -> web.Response:
        self.calls.append((asyncio.get_running_loop().time(), "chat.postMessage"))
        if self.throttle:
            self.throttle -= 1
            return web.Response(status=429, headers={"Retry-After": "1"})
        problem = self._auth(request)
        if request.headers.get("Content-Type") != "application/json; charset=utf-8":
            problem = f"content type {request.headers.get('Content-Type')}"
        body = await request.json()
        if not (isinstance(body.get("channel"), str) and body["channel"].startswith("U")):
            problem = f"channel {body.get('channel')!r} is not a user id"
        if not body.get("text") or not isinstance(body.get("blocks"), list):
            problem = "no text fallback or no blocks"
        if problem:
            self.problems.append(problem)
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        if self.error:
            return web.json_response({"ok": False, "error": self.error})
        self.messages.append(body)
        return web.json_response({"ok": True, "channel": "D0" + body["channel"], "ts": "1.1"})

    async def lookup(self, request: web.Request) -> web.Response:
        problem = self._auth(request)
        if request.content_type != "application/x-www-form-urlencoded":
            problem = f"lookup content type {request.content_type}"
        email = (await request.post()).get("email")
        if problem or not isinstance(email, str):
            self.problems.append(problem or "no email")
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        self.lookups.append(email)
        if email not in USERS:
            return web.json_response({"ok": False, "error": "users_not_found"})
        return web.json_response({"ok": True, "user": {"id": USERS[email], "name": "x"}})

    async def serve(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self.post_message)
        app.router.add_post("/api/users.lookupByEmail", self.lookup)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner, f"http://127.0.0.1:{port}/api"


async def make_sink(
    redis: aioredis.Redis, api_url: str, dropped: list[str] | None = None, **kw: Any
) -> SlackDmSink:
    users = SlackUserStore(redis)
    mapping = {"1001": "U0ANNA", "1002": "Bo@Example.com", "1003": "ghost@example.com"}
    await users.apply("12345", mapping, replace=True)
    kw.setdefault("min_interval", 0.0)
    on_drop = dropped.append if dropped is not None else None
    return SlackDmSink(
        SecretStr(TOKEN), users, clock=SystemClock(), api_url=api_url, dropped=on_drop, **kw
    )


async def test_agents_get_their_own_alerts_by_id_and_by_email_looked_up_once(
    redis_client: aioredis.Redis,
) -> None:
    api = SlackApi()
    runner, url = await api.serve()
    dropped: list[str] = []
    sink = await make_sink(redis_client, url, dropped)
    try:
        await sink.send([alert("1001")])
        await sink.send([alert("1002")])
        await sink.send([alert("1002", status="resolved")])
        await sink.send([alert("1003")])  # Slack knows no such e-mail
        await sink.send([alert("1003", status="resolved")])
        await sink.send([alert("1004")])  # nobody mapped
    finally:
        await sink.close()
        await runner.cleanup()
    assert api.problems == []
    assert [m["channel"] for m in api.messages] == ["U0ANNA", "U0BO", "U0BO"]
    # one question per e-mail: the answer (and the lack of one) is cached in Redis
    assert api.lookups == ["bo@example.com", "ghost@example.com"]
    assert await SlackUserStore(redis_client).cached_email("bo@example.com") == "U0BO"
    assert dropped == ["unresolvable", "unresolvable", "unmapped"]
    first, _, resolve = api.messages
    assert first["text"].startswith("🔴 Break overrun: Agent 1001 (agent 1001) is pause")
    assert first["blocks"][0]["text"]["text"].startswith("*🔴 Break overrun*\n")
    assert first["blocks"][1]["elements"][0]["text"] == "since 09:00 UTC · team Support"
    assert resolve["text"] == ("🟢 Resolved – Break overrun: Agent 1002 (agent 1002), after 17m.")


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        ("channel_not_found", True),
        ("invalid_auth", True),
        ("missing_scope", True),
        ("msg_too_long", True),
        ("internal_error", False),
        ("service_unavailable", False),
        ("ratelimited", False),
    ],
)
async def test_ok_false_errors_are_permanent_unless_slack_is_in_trouble(
    redis_client: aioredis.Redis, error: str, permanent: bool
) -> None:
    api = SlackApi()
    api.error = error
    runner, url = await api.serve()
    sink = await make_sink(redis_client, url)
    try:
        with pytest.raises(SinkError) as err:
            await sink.send([alert("1001")])
    finally:
        await sink.close()
        await runner.cleanup()
    assert err.value.permanent is permanent
    assert error in str(err.value)
    assert TOKEN not in str(err.value)


async def test_429_holds_the_whole_sink_for_retry_after_then_delivers_once(
    redis_client: aioredis.Redis,
) -> None:
    api = SlackApi()
    api.throttle = 1
    runner, url = await api.serve()
    sink = await make_sink(redis_client, url)
    loop = asyncio.get_running_loop()
    try:
        with pytest.raises(SinkError) as err:
            await sink.send([alert("1001")])
        started = loop.time()
        await sink.send([alert("1002")])  # another agent: Slack limits the method, not the DM
        waited = loop.time() - started
    finally:
        await sink.close()
        await runner.cleanup()
    assert err.value.retry_after == 1.0
    assert not err.value.permanent
    assert waited >= 0.95
    assert [m["channel"] for m in api.messages] == ["U0BO"]


async def test_about_one_message_per_second_per_agent_others_not_held(
    redis_client: aioredis.Redis,
) -> None:
    api = SlackApi()
    runner, url = await api.serve()
    sink = await make_sink(redis_client, url, min_interval=0.5)
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        await sink.send([alert("1001")])
        await sink.send([alert("1002")])
        other_agent = loop.time() - start
        await sink.send([alert("1001", status="resolved")])
        same_agent = loop.time() - start
    finally:
        await sink.close()
        await runner.cleanup()
    assert other_agent < 0.4
    assert same_agent >= 0.48
    assert [m["channel"] for m in api.messages] == ["U0ANNA", "U0BO", "U0ANNA"]


async def test_agent_gets_own_rules_supervisor_channel_keeps_everything(
    redis_client: aioredis.Redis,
) -> None:
    """The DM sink takes only its rules about an agent; the supervisors' Slack gets them all;
    drops are counted per reason in puzzelmon_notifications_dropped_total."""
    api = SlackApi()
    runner, url = await api.serve()
    supervisors = Receiver()
    sup_runner = web.AppRunner(supervisors.app())
    await sup_runner.setup()
    sup_port = free_port()
    await web.TCPSite(sup_runner, "127.0.0.1", sup_port).start()
    config = AlertingConfig.model_validate(
        {
            "sinks": {
                "supervisors": {
                    "type": "slack",
                    "webhook_url": f"http://127.0.0.1:{sup_port}/x",
                    "min_interval": "0s",
                },
                "agents": {"type": "slack_dm", "bot_token": TOKEN, "api_url": url},
            },
            "group_wait": "0s",
        }
    )
    registry = CollectorRegistry()
    service = AlertingService(
        config, redis_client, clock=SystemClock(), registry=registry, poll_interval=0.02
    )
    await service.slack_users.apply("12345", {"1001": "U0ANNA"}, replace=True)
    transitions = [
        transition("1001"),  # break overrun: DM + supervisors
        transition("1001", rule=RuleName.OUT_OF_ADHERENCE),  # not a DM rule by default
        transition("1005", rule=RuleName.LATE_LOGIN),  # a DM rule, agent not mapped
    ]
    try:
        await service.start()
        await service.publish_transitions(transitions)
        for _ in range(200):
            sections = sum(len(m["blocks"]) for m in supervisors.accepted)
            dropped = registry.get_sample_value(
                "puzzelmon_notifications_dropped_total", {"sink": "agents", "reason": "unmapped"}
            )
            if api.messages and dropped and sections >= 7:
                break
            await asyncio.sleep(0.02)
        await service.stop(grace=1)
    finally:
        await runner.cleanup()
        await sup_runner.cleanup()
    assert [(m["channel"], m["text"][:15]) for m in api.messages] == [
        ("U0ANNA", "🔴 Break overrun")
    ]
    told = orjson.dumps(supervisors.accepted).decode()
    assert all(r in told for r in ("break_overrun", "out_of_adherence", "late_login"))
    assert dropped == 1


CONFIG = """tenants:
  - id: "12345"
    credentials: {method: password, user_name: u, password: pw}
alerting:
  sinks:
    dm:
      type: slack_dm
"""


@pytest.mark.parametrize(
    ("sink", "where", "says"),
    [
        ("bot_token: xoxp-user-s3cret", "alerting.sinks.dm.bot_token", "expected a Slack bot"),
        ("bot_token: 12345678", "alerting.sinks.dm.bot_token", "not shown"),
        (f"bot_token: {TOKEN}\n      rules: [coffee_break]", "alerting.sinks.dm", "coffee_break"),
        (f"bot_token: {TOKEN}\n      api_url: ftp://x", "alerting.sinks.dm.api_url", "http"),
        ("webhook_url: x", "alerting.sinks.dm.bot_token", "required key is missing"),
    ],
)
def test_bad_dm_config_names_file_line_and_field_never_the_token(
    tmp_path: Path, sink: str, where: str, says: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + f"      {sink}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    message = str(err.value)
    assert f"{path}:" in message
    assert where in message
    assert says in message
    assert "s3cret" not in message
    assert "12345678" not in message


def test_bad_teams_config_names_the_field_and_hides_the_url(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    teams = "type: teams\n      webhook_url: prod-123.westeurope.logic.azure.com/sig=s3cret\n"
    path.write_text(CONFIG.replace("type: slack_dm\n", teams))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert "alerting.sinks.dm.webhook_url: expected an http:// or https:// URL" in str(err.value)
    assert "s3cret" not in str(err.value)


async def test_a_redis_outage_is_a_retryable_failure_not_a_lost_message() -> None:
    dead = aioredis.Redis(port=free_port(), socket_connect_timeout=0.2)
    sink = SlackDmSink(
        SecretStr(TOKEN), SlackUserStore(dead), clock=SystemClock(), api_url="http://127.0.0.1:9"
    )
    try:
        with pytest.raises(SinkError) as err:
            await sink.send([alert("1001")])
    finally:
        await sink.close()
        await dead.aclose()
    assert not err.value.permanent
    assert "Redis" in str(err.value)


async def test_repeated_alerts_within_the_cache_ttl_never_ask_slack_again(
    redis_client: aioredis.Redis,
) -> None:
    api = SlackApi()
    runner, url = await api.serve()
    sink = await make_sink(redis_client, url)
    try:
        for _ in range(3):
            await sink.send([alert("1002")])
    finally:
        await sink.close()
        await runner.cleanup()
    ttl = await redis_client.ttl("pzm:slack-email:bo@example.com")
    assert api.lookups == ["bo@example.com"]
    assert timedelta(hours=23) < timedelta(seconds=ttl) <= timedelta(days=1)
