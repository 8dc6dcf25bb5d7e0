"""The Teams sink: the exact Workflows envelope, grouping, resolves, the size limit, 429."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr

from monitor.alerts.model import alert_from_transition
from monitor.alerts.outbox import Dispatcher, Outbox
from monitor.alerts.sinks.base import SinkError
from monitor.alerts.sinks.teams import MAX_BYTES, TeamsSink, teams_message
from monitor.core.clock import SystemClock
from tests.alerts.helpers import alert, transition
from tests.redis_server import free_port

FLOW_PATH = "/workflows/4f1c/triggers/manual/paths/invoke"
FLOW_QUERY = "api-version=1&sig=flow-s3cret-signature"
TEAMS_LIMIT = 28 * 1024  # what Teams refuses above


class Flow:
    """A Workflows trigger on loopback: checks the request exactly as the flow needs it, then
    answers 202 like the real one; 413 above Teams' size limit; 429 when told to."""

    def __init__(self) -> None:
        self.cards: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.throttle: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.throttle:
            self.throttle -= 1
            return web.Response(status=429, headers={"Retry-After": "1"})
        problem = self.check(request, body)
        if problem:
            self.refused.append(problem)
            return web.Response(status=413 if "size" in problem else 400, text=problem)
        self.headers.append(dict(request.headers))
        self.cards.append(orjson.loads(body)["attachments"][0]["content"])
        return web.Response(status=202)

    @staticmethod
    def check(request: web.Request, body: bytes) -> str | None:
        if request.method != "POST" or request.path != FLOW_PATH:
            return f"wrong request {request.method} {request.path}"
        if request.query_string != FLOW_QUERY:
            return "the signature in the query string is missing"
        if request.content_type != "application/json":
            return f"content type {request.content_type}"
        if len(body) > TEAMS_LIMIT:
            return f"size {len(body)} over the limit"
        if b"${" in body:
            return "an unevaluated template"
        envelope = orjson.loads(body)
        if set(envelope) != {"type", "attachments"} or envelope["type"] != "message":
            return f"not a message envelope: {sorted(envelope)}"
        (attachment,) = envelope["attachments"]
        if attachment["contentType"] != "application/vnd.microsoft.card.adaptive":
            return "not an Adaptive Card"
        if attachment.get("contentUrl", "missing") is not None:
            return "contentUrl must be null"
        card = attachment["content"]
        expected = ("AdaptiveCard", "http://adaptivecards.io/schemas/adaptive-card.json", "1.4")
        if (card["type"], card["$schema"], card["version"]) != expected:
            return "card type, schema or version"
        if not all(b["type"] == "TextBlock" and b["text"] for b in card["body"]):
            return "empty or unknown blocks"
        return None

    async def serve(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner, f"http://127.0.0.1:{port}{FLOW_PATH}?{FLOW_QUERY}"


def texts(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["body"]]


async def test_one_team_firing_and_resolving_arrive_as_grouped_cards(
    redis_client: aioredis.Redis,
) -> None:
    """Alerts of one team gather in one card, another team's in another; resolves follow as
    their own card; every request is the exact Workflows envelope with an idempotency key."""
    flow = Flow()
    runner, url = await flow.serve()
    clock = SystemClock()
    sink = TeamsSink(SecretStr(url), clock=clock, min_interval=0.01)
    outbox = Outbox(redis_client, sinks=["teams"], clock=clock)
    opts: dict[str, Any] = {"group_wait": timedelta(seconds=0.2), "poll_interval": 0.02}
    try:
        async with Dispatcher(outbox, {"teams": sink}, clock=clock, **opts):
            await outbox.publish([alert("1001"), alert("1002"), alert("2001", team="Sales")])
            for _ in range(200):
                if len(flow.cards) == 2:
                    break
                await asyncio.sleep(0.02)
            await outbox.publish([alert("1001", status="resolved")])
            for _ in range(200):
                if len(flow.cards) == 3:
                    break
                await asyncio.sleep(0.02)
    finally:
        await sink.close()
        await runner.cleanup()
    assert flow.refused == []
    support, sales, resolved = (texts(c) for c in flow.cards)
    assert support[0] == "🔴 2 firing — team Support"
    doing = "is pause (Lunch) while scheduled for lunch for 17m."
    assert [t for t in support if t.startswith("Break overrun: Agent")] == [
        f"Break overrun: Agent 1001 (agent 1001) {doing}",
        f"Break overrun: Agent 1002 (agent 1002) {doing}",
    ]
    assert sales[0] == "🔴 FIRING: Break overrun — team Sales"
    assert resolved[0] == "🟢 RESOLVED: Break overrun — team Support"
    assert "Resolved – Break overrun: Agent 1001 (agent 1001), after 17m." in resolved
    assert all(len(h["Idempotency-Key"]) == 32 for h in flow.headers)
    assert [h["X-Puzzel-Monitor-Delivery"] for h in flow.headers] == ["first"] * 3


def test_firing_and_resolved_look_different_and_links_are_actions() -> None:
    firing = alert_from_transition(transition("1"), dashboard_url="http://grafana/d/x")
    card = teams_message([firing, alert("2", status="resolved")])["attachments"][0]["content"]
    status_lines = [b for b in card["body"] if b.get("weight") == "Bolder"][1:]
    assert [(b["text"][:10], b["color"]) for b in status_lines] == [
        ("🔴 FIRING ·", "Attention"),
        ("🟢 RESOLVED", "Good"),
    ]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open dashboard", "url": "http://grafana/d/x"}
    ]
    facts = card["body"][3]["text"]
    assert facts == (
        "tenant 12345 · team Support · rule break_overrun · severity warning · "
        "since 2026-03-02 09:00 UTC"
    )


def test_a_card_over_the_size_limit_is_cut_with_and_n_more() -> None:
    """100 alerts with long summaries do not fit in 28 KB: as many as fit, then '…and N more'."""
    long = {"name": "Agent " + "W" * 1500, "activity": "lunch", "state": "pause"}
    alerts = [alert_from_transition(transition(str(1000 + i), details=long)) for i in range(100)]
    message = teams_message(alerts)
    size = len(orjson.dumps(message))
    assert size <= MAX_BYTES < TEAMS_LIMIT
    body = message["attachments"][0]["content"]["body"]
    assert body[0]["text"] == "🔴 100 firing — team Support"  # the title counts them all
    shown = (len(body) - 2) // 3
    assert 5 < shown < 100
    assert body[-1]["text"] == f"…and {100 - shown} more"
    # it was cut as late as possible: one more alert would not have fit
    fewer = teams_message(alerts[: shown + 1], max_bytes=10**9)
    assert len(orjson.dumps(fewer)) > MAX_BYTES


async def test_the_cut_card_is_accepted_where_the_whole_one_would_be_refused() -> None:
    flow = Flow()
    runner, url = await flow.serve()
    long = {"name": "Agent " + "W" * 1500, "activity": "lunch", "state": "pause"}
    alerts = [alert_from_transition(transition(str(1000 + i), details=long)) for i in range(60)]
    uncut = TeamsSink(SecretStr(url), clock=SystemClock(), max_bytes=10**9)
    sink = TeamsSink(SecretStr(url), clock=SystemClock())
    try:
        with pytest.raises(SinkError) as err:
            await uncut.send(alerts)
        await sink.send(alerts)
    finally:
        await uncut.close()
        await sink.close()
        await runner.cleanup()
    assert err.value.permanent  # 413: retrying the same card cannot help
    assert "over the limit" in flow.refused[0]
    assert texts(flow.cards[0])[-1].startswith("…and ")


async def test_429_waits_out_retry_after_then_delivers_once() -> None:
    """A throttled flow gets nothing for Retry-After seconds; then the card arrives once."""
    flow = Flow()
    flow.throttle = 1
    runner, url = await flow.serve()
    clock = SystemClock()
    sink = TeamsSink(SecretStr(url), clock=clock, min_interval=0.0)
    try:
        with pytest.raises(SinkError) as err:
            await sink.send([alert("1")])
        started = clock.monotonic()
        await sink.send([alert("1")])
        waited = clock.monotonic() - started
    finally:
        await sink.close()
        await runner.cleanup()
    assert err.value.retry_after == 1.0
    assert not err.value.permanent
    assert waited >= 0.95
    assert len(flow.cards) == 1
    assert "flow-s3cret" not in str(err.value)
