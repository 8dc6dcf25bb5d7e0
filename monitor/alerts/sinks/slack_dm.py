"""Slack direct messages to the agent an alert is about, by a bot token and the Web API.

`chat.postMessage` with the agent's Slack user id as `channel` (Slack opens the DM); agents
mapped by e-mail are looked up with `users.lookupByEmail` once and the answer cached. One alert
per message (each goes to its own person), at most one message per second per agent, HTTP 429
`Retry-After` honoured for the whole sink. A resolve is a follow-up message. Slack answers
errors as HTTP 200 `{"ok": false, "error": ...}`: server-side troubles are retried, everything
else (bad token, missing scope, unknown user, bad message) is permanent.

An alert this sink cannot address (its agent is not mapped, or the e-mail is unknown to Slack)
is dropped on purpose and counted through `dropped(reason)`; it is not a delivery failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import structlog
from pydantic import SecretStr
from redis.exceptions import RedisError

from monitor.alerts.model import Alert, rule_title
from monitor.alerts.sinks.base import Delivery, SinkError, delivery_headers
from monitor.alerts.sinks.http import HttpPoster, MinInterval
from monitor.alerts.slack_users import SlackUserStore, is_email
from monitor.core.clock import Clock

log = structlog.get_logger(__name__)

# `ok: false` errors worth another try: Slack's own trouble, not ours
RETRYABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "timeout",
    }
)
NO_SUCH_USER = "users_not_found"
SECTION_MAX = 3000


def agent_message(user_id: str, alert: Alert) -> dict[str, Any]:
    """What the agent reads: the rule, the one-sentence summary, since when."""
    title = rule_title(alert.labels["alertname"])
    head = f"🔴 {title}" if alert.status == "firing" else f"🟢 Resolved: {title}"
    summary = alert.annotations.get("summary", "")
    facts = [f"since {alert.starts_at:%H:%M} UTC"]
    if alert.team:
        facts.append(f"team {alert.team}")
    if alert.ends_at is not None:
        facts.append(f"ended {alert.ends_at:%H:%M} UTC")
    body = f"*{head}*\n{summary}"
    return {
        "channel": user_id,
        # the notification line: the summary already names the rule
        "text": f"{head[:1]} {summary}" if summary else head,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:SECTION_MAX]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]},
        ],
        "unfurl_links": False,
    }


def slack_error(method: str, answer: str) -> SinkError | None:
    """The error of a Web API answer (None when it says `ok`)."""
    try:
        data = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return SinkError(f"slack_dm: {method}: not a JSON answer")
    if isinstance(data, dict) and data.get("ok") is True:
        return None
    error = str(data.get("error", "unknown")) if isinstance(data, dict) else "unknown"
    return SinkError(f"slack_dm: {method}: {error}", permanent=error not in RETRYABLE_ERRORS)


class SlackDmSink:
    def __init__(
        self,
        bot_token: SecretStr,
        users: SlackUserStore,
        *,
        clock: Clock,
        api_url: str = "https://slack.com/api",
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        min_interval: float = 1.0,
        email_cache_ttl: float = 86_400.0,
        unresolved_retry: float = 3_600.0,
        dropped: Callable[[str], None] | None = None,
    ) -> None:
        self._token = bot_token
        self._users = users
        self._clock = clock
        self._api = api_url.rstrip("/")
        self._min_interval = min_interval
        self._per_agent: dict[str, MinInterval] = {}
        self._sink_wide = MinInterval(clock, 0.0)  # only pushed back by a 429
        self._email_ttl = email_cache_ttl
        self._unresolved_ttl = unresolved_retry
        self._dropped = dropped
        self._http = HttpPoster("slack_dm", session=session, timeout=timeout)

    def __repr__(self) -> str:
        return "SlackDmSink(bot_token=SecretStr('**********'))"

    @property
    def max_batch(self) -> int:
        return 1  # each alert goes to its own agent: a batch of one is retried on its own

    async def send(self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()) -> None:
        for alert in batch:
            await self._send_one(alert, deliveries)

    async def _send_one(self, alert: Alert, deliveries: Sequence[Delivery]) -> None:
        agent, tenant = alert.labels.get("agent"), alert.labels.get("tenant", "")
        if agent is None:
            self._drop("not_an_agent", tenant, "")
            return
        try:
            user = await self._user_of(tenant, agent)
        except RedisError as exc:
            raise SinkError(f"slack_dm: Redis: {type(exc).__name__}") from None
        if user is None:
            return
        body = orjson.dumps(agent_message(user, alert))
        await self._pace(user)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        await self._call("chat.postMessage", body, headers | delivery_headers(deliveries))

    async def _user_of(self, tenant: str, agent: str) -> str | None:
        """The agent's Slack user id, or None (counted) when there is none to write to."""
        target = await self._users.get(tenant, agent)
        if target is None:
            self._drop("unmapped", tenant, agent)
            return None
        if not is_email(target):
            return target
        user = await self._users.cached_email(target)
        if user is None:
            user = await self._lookup(target)
        if not user:
            self._drop("unresolvable", tenant, agent)
            return None
        return user

    async def _lookup(self, email: str) -> str:
        """`users.lookupByEmail`, cached: the user id, or "" when Slack knows no such user."""
        await self._sink_wide.wait()
        body = urlencode({"email": email}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = await self._call("users.lookupByEmail", body, headers, check=False)
        try:
            data = orjson.loads(answer)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and data.get("error") == NO_SUCH_USER:
            await self._users.cache_email(email, None, self._unresolved_ttl)
            return ""
        error = slack_error("users.lookupByEmail", answer)
        if error is not None:
            raise error
        assert isinstance(data, dict)  # slack_error accepts only a JSON object saying ok
        user = data.get("user")
        user_id = str(user.get("id", "")) if isinstance(user, dict) else ""
        if not user_id:
            raise SinkError("slack_dm: users.lookupByEmail: no user id in the answer")
        await self._users.cache_email(email, user_id, self._email_ttl)
        return user_id

    async def _pace(self, user: str) -> None:
        await self._sink_wide.wait()
        limiter = self._per_agent.get(user)
        if limiter is None:
            limiter = self._per_agent[user] = MinInterval(self._clock, self._min_interval)
        await limiter.wait()

    async def _call(
        self, method: str, body: bytes, headers: dict[str, str], *, check: bool = True
    ) -> str:
        auth = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            answer = await self._http.post(f"{self._api}/{method}", body, headers | auth)
        except SinkError as exc:
            if exc.retry_after is not None:
                self._sink_wide.push_back(exc.retry_after)  # Slack limits the method, not a DM
            raise
        if check and (error := slack_error(method, answer)) is not None:
            raise error
        return answer

    def _drop(self, reason: str, tenant: str, agent: str) -> None:
        log.info("slack_dm.dropped", reason=reason, tenant=tenant, agent=agent)
        if self._dropped is not None:
            self._dropped(reason)

    async def close(self) -> None:
        await self._http.close()
