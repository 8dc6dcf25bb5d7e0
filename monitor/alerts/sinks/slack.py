"""Slack incoming webhooks: Block Kit messages, one team's simultaneous alerts per message, at most
one message per second per webhook, 429 Retry-After honoured, other 4xx never retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from pydantic import SecretStr

from monitor.alerts.model import Alert, rule_title
from monitor.alerts.sinks.base import Delivery
from monitor.alerts.sinks.http import HttpPoster, MinInterval, post_paced
from monitor.core.clock import Clock

HEADER_MAX = 150
SECTION_MAX = 3000
TEXT_MAX = 3000
MAX_BLOCKS = 50
BLOCKS_PER_ALERT = 2  # section + context
FIXED_BLOCKS = 2  # header + actions
MAX_ALERTS_PER_MESSAGE = (MAX_BLOCKS - FIXED_BLOCKS) // BLOCKS_PER_ALERT

FIRING = "🔴 FIRING"
RESOLVED = "🟢 RESOLVED"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_word(alert: Alert) -> str:
    return FIRING if alert.status == "firing" else RESOLVED


def _header(alerts: Sequence[Alert]) -> str:
    firing = sum(a.status == "firing" for a in alerts)
    resolved = len(alerts) - firing
    team = alerts[0].team
    where = f" — team {team}" if team and all(a.team == team for a in alerts) else ""
    if len(alerts) == 1:
        a = alerts[0]
        return f"{_status_word(a)}: {rule_title(a.labels['alertname'])}{where}"
    parts = []
    if firing:
        parts.append(f"🔴 {firing} firing")
    if resolved:
        parts.append(f"🟢 {resolved} resolved")
    return ", ".join(parts) + where


def slack_message(alerts: Sequence[Alert]) -> dict[str, Any]:
    """A Block Kit message for up to `MAX_ALERTS_PER_MESSAGE` alerts."""
    if not alerts:
        raise ValueError("a Slack message needs at least one alert")
    if len(alerts) > MAX_ALERTS_PER_MESSAGE:
        raise ValueError(f"at most {MAX_ALERTS_PER_MESSAGE} alerts fit in one Slack message")
    header = _cut(_header(alerts), HEADER_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}
    ]
    for a in alerts:
        title = rule_title(a.labels["alertname"])
        summary = a.annotations.get("summary", "")
        body = f"*{_status_word(a)}* · *{title}*\n{summary}"
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(body, SECTION_MAX)}}
        )
        facts = [f"tenant `{a.labels.get('tenant', '?')}`"]
        if a.team:
            facts.append(f"team `{a.team}`")
        facts.append(f"rule `{a.labels.get('rule', a.labels['alertname'])}`")
        facts.append(f"severity `{a.labels.get('severity', '?')}`")
        facts.append(f"since {a.starts_at:%Y-%m-%d %H:%M} UTC")
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]}
        )
    dashboard = next(
        (a.annotations["dashboard_url"] for a in alerts if "dashboard_url" in a.annotations), None
    )
    runbook = next(
        (a.annotations["runbook_url"] for a in alerts if "runbook_url" in a.annotations), None
    )
    buttons = []
    if dashboard:
        buttons.append(_button("Open dashboard", dashboard))
    if runbook:
        buttons.append(_button("Runbook", runbook))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    lines = [
        f"{_status_word(a)}: {a.annotations.get('summary', a.labels['alertname'])}" for a in alerts
    ]
    return {"text": _cut("\n".join(lines), TEXT_MAX), "blocks": blocks}


def _button(label: str, url: str) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}


class SlackSink:
    def __init__(
        self,
        webhook_url: SecretStr,
        *,
        clock: Clock,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        min_interval: float = 1.0,
    ) -> None:
        self._url = webhook_url
        self._limiter = MinInterval(clock, min_interval)
        self._http = HttpPoster("slack", session=session, timeout=timeout)

    def __repr__(self) -> str:
        return "SlackSink(webhook_url=SecretStr('**********'))"

    @property
    def max_batch(self) -> int:
        return MAX_ALERTS_PER_MESSAGE

    async def send(self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()) -> None:
        body = orjson.dumps(slack_message(batch))
        await post_paced(self._http, self._limiter, self._url.get_secret_value(), body, deliveries)

    async def close(self) -> None:
        await self._http.close()
