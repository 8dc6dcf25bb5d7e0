"""The Teams webhook URL and the Slack bot token never show: not in logs while deliveries fail,
not on /metrics, not in any API answer (alerts, Slack users, readiness), not in reprs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from pydantic import SecretStr
from structlog.testing import capture_logs

from monitor.alerts.config import AlertingConfig
from monitor.app.config import ApiConfig, iter_secrets
from monitor.app.wiring import Monitor
from monitor.rules.loader import ruleset_from_mapping
from tests.alerts.helpers import transition
from tests.redis_server import free_port
from tests.simserver import T0, SimServer, config_for

TEAMS_SIG = "Tm5-w0rkfl0w-s1gnature"
BOT_TOKEN = "xoxb-9999-8888-b0tS3cret"
API_TOKEN = "api-t0ken-for-this-test"


def alerting(port: int) -> AlertingConfig:
    return AlertingConfig.model_validate(
        {
            "sinks": {
                "teams": {
                    "type": "teams",
                    "webhook_url": f"http://127.0.0.1:{port}/workflows/x/run?sig={TEAMS_SIG}",
                },
                "agents": {
                    "type": "slack_dm",
                    "bot_token": BOT_TOKEN,
                    "api_url": f"http://127.0.0.1:{port}/api",
                },
            },
            "group_wait": "0s",
        }
    )


async def test_tokens_and_urls_never_appear_in_logs_metrics_or_answers(
    make_sim_server: Callable[..., Any], redis_client: aioredis.Redis
) -> None:
    server: SimServer = await make_sim_server()
    port = free_port()  # nothing listens: every delivery fails and is retried (and logged)
    config = config_for(server).model_copy(
        update={"alerting": alerting(port), "api": ApiConfig(token=SecretStr(API_TOKEN))}
    )
    # both are known as secrets, so the log scrubber knows them too
    secrets = list(iter_secrets(config))
    assert BOT_TOKEN in secrets
    assert any(TEAMS_SIG in s for s in secrets)
    monitor = Monitor(
        config,
        clock=server.clock,
        redis=redis_client,
        ruleset=ruleset_from_mapping({"stale_data": {"after": "1m"}}, only_listed=True),
        host="127.0.0.1",
        port=0,
    )
    await monitor.alerting.slack_users.apply("12345", {"1": "U0ONE"}, replace=True)
    seen: list[str] = []
    with capture_logs() as logs:
        await monitor.start()
        try:
            await monitor.service.scheduler.run_until(T0 + timedelta(minutes=1))
            tenant = config.tenants[0].customer_key
            await monitor.alerting.publish_transitions([transition("1", tenant=tenant)])
            await asyncio.sleep(0.5)  # both sinks fail against the closed port, and retry
            base = f"http://127.0.0.1:{monitor.service.bound_port}"
            auth = {"Authorization": f"Bearer {API_TOKEN}"}
            async with aiohttp.ClientSession(headers=auth) as http:
                for path in (
                    "/metrics",
                    "/readyz",
                    "/api/v1/alerts",
                    f"/api/v1/tenants/{tenant}/slack-users",
                ):
                    async with http.get(base + path) as answer:
                        seen.append(f"{path} {answer.status} {await answer.text()}")
        finally:
            await monitor.stop(grace=0)
    text = "\n".join(seen) + repr(logs) + repr(monitor.alerting.sinks) + repr(config)
    assert [line.split(" ", 2)[1] for line in seen] == ["200", "200", "200", "200"]
    assert '"slack_user_id":"U0ONE"' in seen[3].replace(" ", "")
    assert "puzzelmon_notification_failures_total" in text  # the answers are there...
    assert any(e["event"] == "sink.failing" for e in logs)  # ...and so are the failures
    assert TEAMS_SIG not in text
    assert BOT_TOKEN not in text
    assert "b0tS3cret" not in text
