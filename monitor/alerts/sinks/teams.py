"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"): one
Adaptive Card per message, one team's simultaneous alerts per card, rendered text only (the
webhook evaluates no `${...}` templates), cut to fit Teams' ~28 KB message limit."""

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

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"
# Teams refuses messages over about 28 KB; the envelope must fit with room to spare
MAX_BYTES = 27_000
TEXT_MAX = 2_000  # one alert's summary: one huge alert must not crowd out the others
DEFAULT_MAX_ALERTS = 25

FIRING = "🔴 FIRING"
RESOLVED = "🟢 RESOLVED"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(alerts: Sequence[Alert]) -> str:
    firing = sum(a.status == "firing" for a in alerts)
    team = alerts[0].team
    where = f" — team {team}" if team and all(a.team == team for a in alerts) else ""
    if len(alerts) == 1:
        a = alerts[0]
        word = FIRING if a.status == "firing" else RESOLVED
        return f"{word}: {rule_title(a.labels['alertname'])}{where}"
    parts = [f"🔴 {firing} firing"] if firing else []
    if len(alerts) - firing:
        parts.append(f"🟢 {len(alerts) - firing} resolved")
    return ", ".join(parts) + where


def _alert_blocks(a: Alert) -> list[dict[str, Any]]:
    firing = a.status == "firing"
    facts = [f"tenant {a.labels.get('tenant', '?')}"]
    if a.team:
        facts.append(f"team {a.team}")
    facts.append(f"rule {a.labels.get('rule', a.labels['alertname'])}")
    facts.append(f"severity {a.labels.get('severity', '?')}")
    facts.append(f"since {a.starts_at:%Y-%m-%d %H:%M} UTC")
    return [
        {
            "type": "TextBlock",
            "text": f"{FIRING if firing else RESOLVED} · {rule_title(a.labels['alertname'])}",
            "weight": "Bolder",
            "color": "Attention" if firing else "Good",
            "wrap": True,
            "separator": True,
        },
        {
            "type": "TextBlock",
            "text": _cut(a.annotations.get("summary", ""), TEXT_MAX),
            "wrap": True,
        },
        {
            "type": "TextBlock",
            "text": " · ".join(facts),
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
            "spacing": "None",
        },
    ]


def _actions(alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    out = []
    for key, label in (("dashboard_url", "Open dashboard"), ("runbook_url", "Runbook")):
        url = next((a.annotations[key] for a in alerts if key in a.annotations), None)
        if url:
            out.append({"type": "Action.OpenUrl", "title": label, "url": url})
    return out


def _envelope(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": body,
    }
    if actions:
        card["actions"] = actions
    attachment = {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def teams_message(alerts: Sequence[Alert], *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """The Workflows envelope for `alerts`: as many as fit in `max_bytes`, the rest counted in
    a closing "…and N more" line (the title still counts them all)."""
    if not alerts:
        raise ValueError("a Teams message needs at least one alert")
    title = {
        "type": "TextBlock",
        "text": _title(alerts),
        "size": "Medium",
        "weight": "Bolder",
        "wrap": True,
    }
    actions = _actions(alerts)
    blocks = [_alert_blocks(a) for a in alerts]
    shown = len(alerts)
    while True:
        body = [title, *(b for group in blocks[:shown] for b in group)]
        if shown < len(alerts):
            more = f"…and {len(alerts) - shown} more"
            body.append({"type": "TextBlock", "text": more, "weight": "Bolder", "wrap": True})
        message = _envelope(body, actions)
        if shown <= 1 or len(orjson.dumps(message)) <= max_bytes:
            return message
        shown -= 1


class TeamsSink:
    def __init__(
        self,
        webhook_url: SecretStr,
        *,
        clock: Clock,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        min_interval: float = 1.0,
        max_alerts: int = DEFAULT_MAX_ALERTS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._url = webhook_url
        self._max = max_alerts
        self._max_bytes = max_bytes
        self._limiter = MinInterval(clock, min_interval)
        self._http = HttpPoster("teams", session=session, timeout=timeout)

    def __repr__(self) -> str:
        return "TeamsSink(webhook_url=SecretStr('**********'))"

    @property
    def max_batch(self) -> int:
        return self._max

    async def send(self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()) -> None:
        body = orjson.dumps(teams_message(batch, max_bytes=self._max_bytes))
        await post_paced(self._http, self._limiter, self._url.get_secret_value(), body, deliveries)

    async def close(self) -> None:
        await self._http.close()
