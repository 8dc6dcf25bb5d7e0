"""`doctor`'s look at the alert sinks: what can be checked without notifying anybody.

A Slack DM sink's bot token is tried with `auth.test` (which posts nothing) and its scopes read
from the answer's `x-oauth-scopes` header; a sink that could only be checked by sending a
message (Slack and Teams webhooks, the signed webhook) is listed as configured, not called.
No secret is printed: a failure names the Slack error code or the exception type only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import aiohttp
import orjson

from monitor.alerts.config import AlertingConfig, SlackDmSinkConfig

OK = "ok"
AUTH = "auth problem"
ERROR = "error"
NOT_CALLED = "not called"
NEEDED_SCOPES = ("chat:write",)
EMAIL_SCOPE = "users:read.email"


@dataclass(frozen=True, slots=True)
class SinkCheck:
    name: str
    kind: str
    verdict: str
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.verdict in (OK, NOT_CALLED)


async def check_sinks(alerting: AlertingConfig, *, limit_s: float = 10.0) -> list[SinkCheck]:
    checks: list[SinkCheck] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit_s)) as session:
        for name, sink in alerting.sinks.items():
            if isinstance(sink, SlackDmSinkConfig):
                checks.append(await check_slack_bot(name, sink, session))
            elif sink.type == "console":
                checks.append(SinkCheck(name, sink.type, OK, "prints to stdout"))
            else:
                why = "a check would send a message" if sink.type != "alertmanager" else ""
                checks.append(SinkCheck(name, sink.type, NOT_CALLED, why))
    return checks


async def check_slack_bot(
    name: str, sink: SlackDmSinkConfig, session: aiohttp.ClientSession
) -> SinkCheck:
    """`auth.test` with the bot token: valid, and holding the scopes the sink needs?"""
    auth = {"Authorization": f"Bearer {sink.bot_token.get_secret_value()}"}
    try:
        async with session.post(f"{sink.api_url.rstrip('/')}/auth.test", headers=auth) as resp:
            text = await resp.text()
            scopes = {s.strip() for s in resp.headers.get("x-oauth-scopes", "").split(",")}
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return SinkCheck(name, sink.type, ERROR, f"auth.test: {type(exc).__name__}")
    if status != 200:
        return SinkCheck(name, sink.type, ERROR, f"auth.test: HTTP {status}")
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        error = answer.get("error", "unknown") if isinstance(answer, dict) else "not JSON"
        return SinkCheck(name, sink.type, AUTH, f"auth.test: {error}")
    who = f"bot {answer.get('user', '?')} in workspace {answer.get('team', '?')}"
    missing = [s for s in NEEDED_SCOPES if s not in scopes]
    if missing:
        return SinkCheck(name, sink.type, AUTH, f"{who}; missing scope {', '.join(missing)}")
    if EMAIL_SCOPE not in scopes:
        who += f"; no {EMAIL_SCOPE}: agents mapped by e-mail cannot be looked up"
    return SinkCheck(name, sink.type, OK, who)


def print_sinks(checks: Sequence[SinkCheck], out: TextIO) -> None:
    if not checks:
        return
    print("alert sinks", file=out)
    width = max(len(c.name) for c in checks)
    for c in checks:
        detail = f" ({c.detail})" if c.detail else ""
        print(f"  {c.name.ljust(width)}  {c.kind:<12} {c.verdict}{detail}", file=out)
