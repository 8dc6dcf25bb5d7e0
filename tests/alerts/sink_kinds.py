"""Every HTTP sink as the delivery tests see it: how to build it against a loopback receiver,
and how to read back from what the receiver accepted which alert (agent, status) arrived."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pydantic import SecretStr

from monitor.alerts.sinks.base import Sink
from monitor.alerts.sinks.slack import SlackSink
from monitor.alerts.sinks.slack_dm import SlackDmSink
from monitor.alerts.sinks.teams import RESOLVED as TEAMS_RESOLVED
from monitor.alerts.sinks.teams import TeamsSink
from monitor.alerts.sinks.webhook import WebhookSink, verify_signature
from monitor.alerts.slack_users import SlackUserStore
from monitor.core.clock import SystemClock
from tests.alerts.helpers import Receiver

KEY = "k3y-for-tests"
SLACK_OK = '{"ok": true, "channel": "D0001", "ts": "1700000000.000100"}'
_AGENT = re.compile(r"Agent (\d+)")

Delivered = list[tuple[str, str]]


@dataclass(frozen=True)
class SinkKind:
    name: str
    make: Callable[[int, SystemClock, aioredis.Redis], Sink]
    delivered: Callable[[Receiver], Delivered]
    receiver: Callable[[SystemClock], Receiver]
    prepare: Callable[[aioredis.Redis, Sequence[str]], Awaitable[None]]


async def _nothing(redis: aioredis.Redis, agents: Sequence[str]) -> None:
    return None


def _agent(text: str) -> str:
    found = _AGENT.search(text)
    assert found, f"no agent in {text!r}"
    return found.group(1)


# --- the signed webhook ---------------------------------------------------------------------


def _webhook(port: int, clock: SystemClock, redis: aioredis.Redis) -> Sink:
    return WebhookSink(
        SecretStr(f"http://127.0.0.1:{port}/hook"),
        clock=clock,
        receiver="ops",
        hmac_key=SecretStr(KEY),
        timeout=2.0,
    )


def _signed_receiver(clock: SystemClock) -> Receiver:
    def check(body: bytes, headers: dict[str, str]) -> bool:
        return verify_signature(
            body,
            headers["X-Puzzel-Monitor-Timestamp"],
            headers["X-Puzzel-Monitor-Signature"],
            KEY,
            now=clock.now(),
        )

    return Receiver(check=check)


def _webhook_delivered(receiver: Receiver) -> Delivered:
    return [(a["labels"]["agent"], a["status"]) for p in receiver.accepted for a in p["alerts"]]


# --- Slack (incoming webhook) ---------------------------------------------------------------


def _slack(port: int, clock: SystemClock, redis: aioredis.Redis) -> Sink:
    url = SecretStr(f"http://127.0.0.1:{port}/services/T0/B0/x")
    return SlackSink(url, clock=clock, timeout=2.0, min_interval=0.02)


def _slack_delivered(receiver: Receiver) -> Delivered:
    out = []
    for message in receiver.accepted:
        for block in message["blocks"]:
            text = block.get("text", {}).get("text", "") if block["type"] == "section" else ""
            if text:
                out.append((_agent(text), "resolved" if "RESOLVED" in text else "firing"))
    return out


# --- Slack direct messages ------------------------------------------------------------------


def _slack_dm(port: int, clock: SystemClock, redis: aioredis.Redis) -> Sink:
    return SlackDmSink(
        SecretStr("xoxb-test-token"),
        SlackUserStore(redis),
        clock=clock,
        api_url=f"http://127.0.0.1:{port}/api",
        timeout=2.0,
        min_interval=0.02,
    )


async def _map_agents(redis: aioredis.Redis, agents: Sequence[str]) -> None:
    await SlackUserStore(redis).apply("12345", {a: f"U{a}" for a in agents}, replace=True)


def _dm_delivered(receiver: Receiver) -> Delivered:
    return [
        (m["channel"].removeprefix("U"), "resolved" if "Resolved" in m["text"] else "firing")
        for m in receiver.accepted
    ]


# --- Microsoft Teams ------------------------------------------------------------------------


def _teams(port: int, clock: SystemClock, redis: aioredis.Redis) -> Sink:
    url = SecretStr(f"http://127.0.0.1:{port}/workflows/abc/triggers/manual/run?sig=s3cret")
    return TeamsSink(url, clock=clock, timeout=2.0, min_interval=0.02)


def _teams_delivered(receiver: Receiver) -> Delivered:
    out = []
    for message in receiver.accepted:
        body: list[dict[str, Any]] = message["attachments"][0]["content"]["body"]
        # per alert: a status line, its summary, its facts (after the card's title)
        for status_block, summary in zip(body[1::3], body[2::3], strict=False):
            status = "resolved" if status_block["text"].startswith(TEAMS_RESOLVED) else "firing"
            out.append((_agent(summary["text"]), status))
    return out


SINK_KINDS = [
    SinkKind("webhook", _webhook, _webhook_delivered, _signed_receiver, _nothing),
    SinkKind("slack", _slack, _slack_delivered, lambda c: Receiver(), _nothing),
    SinkKind(
        "slack_dm", _slack_dm, _dm_delivered, lambda c: Receiver(ok_body=SLACK_OK), _map_agents
    ),
    SinkKind("teams", _teams, _teams_delivered, lambda c: Receiver(ok_body=""), _nothing),
]
