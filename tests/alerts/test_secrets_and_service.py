"""Secrets stay out of logs and reprs; the assembled service delivers from config."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from monitor.alerts.config import AlertingConfig
from monitor.alerts.service import AlertingService
from monitor.core.clock import SystemClock
from tests.alerts.helpers import transition
from tests.redis_server import free_port

SLACK_SECRET = "T0001/B0001/XXXXsecretXXXX"
HMAC_SECRET = "hmac-very-secret"


def secret_config(port: int) -> AlertingConfig:
    return AlertingConfig.model_validate(
        {
            "sinks": {
                "slack": {
                    "type": "slack",
                    "webhook_url": f"http://127.0.0.1:{port}/services/{SLACK_SECRET}",
                },
                "hook": {
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{port}/hook?token={SLACK_SECRET}",
                    "hmac_key": HMAC_SECRET,
                },
            },
            "group_wait": "0s",
        }
    )


def test_config_repr_and_dump_hide_secrets() -> None:
    """Neither repr nor a JSON dump of the config shows the webhook URL or the HMAC key."""
    cfg = secret_config(1)
    for text in (repr(cfg), str(cfg), cfg.model_dump_json()):
        assert SLACK_SECRET not in text
        assert HMAC_SECRET not in text


async def test_failing_deliveries_log_no_secret(redis_client: aioredis.Redis) -> None:
    """Retries against an unreachable Slack/webhook log the failure but never the URL or key."""
    port = free_port()  # nothing listens: connection refused
    service = AlertingService(
        secret_config(port),
        redis_client,
        clock=SystemClock(),
        registry=CollectorRegistry(),
        poll_interval=0.02,
        retry_base=0.02,
        retry_cap=0.05,
    )
    with capture_logs() as logs:
        await service.start()
        await service.publish_transitions([transition("1")])
        await asyncio.sleep(0.4)
        await service.stop(grace=0.5)
    text = repr(logs) + repr(service.sinks)
    assert any(e["event"] == "sink.failing" for e in logs)
    assert SLACK_SECRET not in text
    assert HMAC_SECRET not in text
    assert str(port) not in text


async def test_default_service_prints_to_console(redis_client: aioredis.Redis) -> None:
    """With the default config, a transition comes out on the console and is counted."""
    out = io.StringIO()
    registry = CollectorRegistry()

    service = AlertingService(
        AlertingConfig(group_wait=timedelta(0)),
        redis_client,
        clock=SystemClock(),
        registry=registry,
        console_stream=out,
        poll_interval=0.02,
        tick_interval=0.05,
    )
    await service.start()
    try:
        await service.publish_transitions([transition("1001")])
        for _ in range(200):
            if out.getvalue():
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # let the timer refresh the backlog snapshot
    finally:
        await service.stop()
    assert "firing" in out.getvalue()
    assert registry.get_sample_value("puzzelmon_notifications_total", {"sink": "console"}) == 1
    assert registry.get_sample_value("puzzelmon_outbox_pending", {"sink": "console"}) == 0
    assert next(r.path for r in service.routes()) == "/api/v1/alerts"
