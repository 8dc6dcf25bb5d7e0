"""Shared test helpers: engine transitions, alerts, and an in-process HTTP receiver."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from aiohttp import web

from monitor.alerts.model import Alert, alert_from_transition
from monitor.engine.model import AlertTransition, RuleName

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def transition(
    agent: str = "1001",
    *,
    status: Literal["firing", "resolved"] = "firing",
    rule: RuleName = RuleName.BREAK_OVERRUN,
    team: str = "Support",
    tenant: str = "12345",
    severity: str = "warning",
    since: datetime = T0,
    at: datetime | None = None,
    details: dict[str, str] | None = None,
) -> AlertTransition:
    at = at or since + timedelta(minutes=17)
    return AlertTransition(
        rule=rule,
        status=status,
        tenant=tenant,
        subject="agent",
        subject_id=agent,
        team=team,
        severity=severity,
        at=at,
        ideal_at=at,
        condition_since=since,
        details=details
        if details is not None
        else {
            "name": f"Agent {agent}",
            "activity": "lunch",
            "state": "pause",
            "pause_type": "Lunch",
        },
    )


def alert(agent: str = "1001", **kw: Any) -> Alert:
    return alert_from_transition(transition(agent, **kw))


@dataclass
class Receiver:
    """Records every request; `mode` decides the answer ("ok", "500", "429", "400")."""

    mode: str = "ok"
    retry_after: str = "1"
    requests: list[tuple[float, bytes, dict[str, str]]] = field(default_factory=list)
    accepted: list[Any] = field(default_factory=list)
    check: Callable[[bytes, dict[str, str]], bool] | None = None
    ok_body: str = "ok"  # what a success says (Slack's Web API: a JSON object with ok: true)
    paths: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((time.monotonic(), body, dict(request.headers)))
        self.paths.append(request.path)
        if self.mode == "500":
            return web.Response(status=500, text="rollup_error")
        if self.mode == "429":
            return web.Response(status=429, headers={"Retry-After": self.retry_after})
        if self.mode == "400":
            return web.Response(status=400, text="invalid_payload")
        if self.check is not None and not self.check(body, dict(request.headers)):
            return web.Response(status=401, text="bad signature")
        self.accepted.append(orjson.loads(body))
        return web.Response(text=self.ok_body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app
