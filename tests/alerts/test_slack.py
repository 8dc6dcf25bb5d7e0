"""The Slack sink: Block Kit shape and limits, rate limit, grouping, error classes."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr

from monitor.alerts.model import alert_from_transition
from monitor.alerts.outbox import Dispatcher, Outbox
from monitor.alerts.sinks.base import SinkError
from monitor.alerts.sinks.slack import (
    HEADER_MAX,
    MAX_ALERTS_PER_MESSAGE,
    MAX_BLOCKS,
    SlackSink,
    slack_message,
)
from monitor.core.clock import SystemClock
from tests.alerts.helpers import Receiver, alert, transition
from tests.redis_server import free_port


async def serve(receiver: Receiver) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(receiver.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/services/T000/B000/secretpart"


def test_message_shows_firing_and_resolved_distinctly_within_limits() -> None:
    """Header, sections and context respect Slack's limits; firing and resolved look different."""
    long_name = "X" * 5000
    firing = alert_from_transition(
        transition("1", details={"name": long_name}), dashboard_url="http://grafana/d/x"
    )
    resolved = alert("2", status="resolved")
    msg = slack_message([firing, resolved])
    blocks = msg["blocks"]
    assert blocks[0]["type"] == "header"
    assert len(blocks[0]["text"]["text"]) <= HEADER_MAX
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert "FIRING" in sections[0]["text"]["text"]
    assert "RESOLVED" in sections[1]["text"]["text"]
    context = next(b for b in blocks if b["type"] == "context")["elements"][0]["text"]
    assert "tenant `12345`" in context
    assert "team `Support`" in context
    assert "rule `break_overrun`" in context
    actions = [b for b in blocks if b["type"] == "actions"]
    assert actions[0]["elements"][0]["url"] == "http://grafana/d/x"
    assert msg["text"]  # the notification fallback


def test_message_refuses_more_alerts_than_fit() -> None:
    """More alerts than 50 blocks allow is a programming error, not a truncated message."""
    alerts = [alert(str(i)) for i in range(MAX_ALERTS_PER_MESSAGE + 1)]
    with pytest.raises(ValueError, match="at most"):
        slack_message(alerts)
    assert len(slack_message(alerts[:-1])["blocks"]) <= MAX_BLOCKS


async def test_burst_of_50_goes_out_grouped_at_most_one_per_second(
    redis_client: aioredis.Redis,
) -> None:
    """50 simultaneous alerts for one team arrive as 3 messages, at least a second apart."""
    receiver = Receiver()
    runner, url = await serve(receiver)
    clock = SystemClock()
    sink = SlackSink(SecretStr(url), clock=clock)
    outbox = Outbox(redis_client, sinks=["slack"], clock=clock)
    try:
        async with Dispatcher(
            outbox,
            {"slack": sink},
            clock=clock,
            group_wait=timedelta(seconds=0.2),
            poll_interval=0.02,
        ):
            await outbox.publish([alert(str(1000 + i)) for i in range(50)])
            for _ in range(300):
                if sum(len(m["blocks"]) for m in receiver.accepted) >= 100:
                    break
                await asyncio.sleep(0.02)
    finally:
        await sink.close()
        await runner.cleanup()
    times = [t for t, _, _ in receiver.requests]
    assert len(receiver.accepted) == 3
    sections = [b for m in receiver.accepted for b in m["blocks"] if b["type"] == "section"]
    assert len(sections) == 50
    assert all(len(m["blocks"]) <= MAX_BLOCKS for m in receiver.accepted)
    # the limiter spaces sends a full second apart; allow for network jitter on arrival
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(times))


@pytest.mark.parametrize(
    ("mode", "permanent", "retry_after"),
    [("429", False, 7.0), ("500", False, None), ("400", True, None)],
)
async def test_error_classes(mode: str, permanent: bool, retry_after: float | None) -> None:
    """429 carries Retry-After, 5xx is retryable, other 4xx is permanent."""
    receiver = Receiver(mode=mode, retry_after="7")
    runner, url = await serve(receiver)
    sink = SlackSink(SecretStr(url), clock=SystemClock())
    try:
        with pytest.raises(SinkError) as err:
            await sink.send([alert("1")])
    finally:
        await sink.close()
        await runner.cleanup()
    assert err.value.permanent is permanent
    assert err.value.retry_after == retry_after
    assert "secretpart" not in str(err.value)


async def test_connection_refused_is_retryable_and_hides_url() -> None:
    """A refused connection is a retryable error whose text does not contain the webhook URL."""
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/secretpart"
    sink = SlackSink(SecretStr(url), clock=SystemClock())
    try:
        with pytest.raises(SinkError) as err:
            await sink.send([alert("1")])
    finally:
        await sink.close()
    assert err.value.permanent is False
    assert "secretpart" not in str(err.value)
    assert "127.0.0.1" not in str(err.value)


def test_payload_is_json_serialisable() -> None:
    """The message serialises with orjson (what the sink sends)."""
    body = orjson.dumps(slack_message([alert("1")]))
    assert b'"blocks"' in body
