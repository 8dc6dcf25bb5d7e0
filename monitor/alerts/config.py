"""Configuration of alert delivery: sinks, routes, noise control. The defaults give a console-only
setup (every alert printed, nothing sent anywhere)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from monitor.core.durations import parse_duration
from monitor.engine.model import RuleName


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"expected a duration like '90s', '2m', '1h30m' or '2d', got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _http_url(value: object) -> object:
    # refused at load, not at the first delivery; only the scheme is echoed, because the rest
    # of a webhook URL is often its credential
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if isinstance(text, str) and not text.strip().lower().startswith(("http://", "https://")):
        scheme = text.split("://", 1)[0] + "://" if "://" in text else "no scheme"
        raise ValueError(f"expected an http:// or https:// URL, got one with {scheme!r}")
    return value


HttpUrlSecret = Annotated[SecretStr, AfterValidator(_http_url)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsoleSinkConfig(_Model):
    type: Literal["console"] = "console"


class SlackSinkConfig(_Model):
    type: Literal["slack"]
    webhook_url: HttpUrlSecret
    timeout: Duration = timedelta(seconds=10)
    min_interval: Duration = timedelta(seconds=1)  # Slack allows about one message per second


class TeamsSinkConfig(_Model):
    """A Microsoft Teams Workflows webhook (the flow "When a Teams webhook request is received")."""

    type: Literal["teams"]
    webhook_url: HttpUrlSecret  # carries its own credential (the flow's signature)
    timeout: Duration = timedelta(seconds=10)
    min_interval: Duration = timedelta(seconds=1)
    max_alerts: int = Field(default=25, ge=1, le=100)  # per card; more go in the next card


def _bot_token(value: SecretStr) -> SecretStr:
    # the token is never echoed, not even in part: only what kind of token it is not
    if not value.get_secret_value().startswith("xoxb-"):
        raise ValueError("expected a Slack bot token (xoxb-...); got a value of another kind")
    return value


# the rules about an agent's own conduct, which the agent can act on
DEFAULT_DM_RULES = ["break_overrun", "long_pause", "late_login"]


class SlackDmSinkConfig(_Model):
    """Direct messages to the agent an alert is about, by a Slack bot (scopes `chat:write`,
    and `users:read.email` for mappings by e-mail). Only alerts about one agent, of `rules`."""

    type: Literal["slack_dm"]
    bot_token: Annotated[SecretStr, AfterValidator(_bot_token)]
    rules: list[str] = Field(default_factory=lambda: list(DEFAULT_DM_RULES), min_length=1)
    api_url: HttpUrl = "https://slack.com/api"
    timeout: Duration = timedelta(seconds=10)
    min_interval: Duration = timedelta(seconds=1)  # per agent: Slack allows ~1 message/s/channel
    email_cache_ttl: Duration = timedelta(days=1)  # how long an e-mail's user id is trusted
    unresolved_retry: Duration = timedelta(hours=1)  # an unknown e-mail is asked again after

    @model_validator(mode="after")
    def _known_rules(self) -> SlackDmSinkConfig:
        known = {r.value for r in RuleName}
        unknown = [r for r in self.rules if r not in known]
        if unknown:
            raise ValueError(f"rules: unknown rule(s) {unknown}; known rules: {sorted(known)}")
        return self


class WebhookSinkConfig(_Model):
    type: Literal["webhook"]
    url: HttpUrlSecret  # may carry a token in its query string, so it is a secret too
    hmac_key: SecretStr | None = None
    timeout: Duration = timedelta(seconds=10)
    max_alerts: int = Field(default=100, ge=1)


class AlertmanagerSinkConfig(_Model):
    type: Literal["alertmanager"]
    url: HttpUrl  # base URL, e.g. http://alertmanager:9093
    bearer_token: SecretStr | None = None
    timeout: Duration = timedelta(seconds=10)
    resend_interval: Duration = timedelta(seconds=60)
    resolved_resend_for: Duration = timedelta(minutes=5)


SinkConfig = Annotated[
    ConsoleSinkConfig
    | SlackSinkConfig
    | SlackDmSinkConfig
    | TeamsSinkConfig
    | WebhookSinkConfig
    | AlertmanagerSinkConfig,
    Field(discriminator="type"),
]


class QuietHoursConfig(_Model):
    """A local-time window in which a route's notifications are held (end may be past midnight)."""

    start: time
    end: time
    timezone: str = "UTC"
    days: list[Day] = list(_DAYS)

    @model_validator(mode="after")
    def _check(self) -> QuietHoursConfig:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        return self


class Matchers(_Model):
    """Lists of accepted values per label; an empty list accepts anything."""

    rule: list[str] = []
    team: list[str] = []
    severity: list[str] = []
    tenant: list[str] = []


class RouteConfig(_Model):
    name: str
    match: Matchers = Matchers()
    sinks: list[str]
    # keep evaluating later routes after this one matched
    continue_: bool = Field(default=False, alias="continue")
    repeat_interval: Duration | None = None  # overrides AlertingConfig.repeat_interval
    quiet_hours: list[QuietHoursConfig] | None = None  # overrides AlertingConfig.quiet_hours


class EscalationConfig(_Model):
    """Notify `sinks` too once an alert matched by `match` has fired for `after`."""

    name: str
    match: Matchers = Matchers()
    after: Duration
    sinks: list[str]


def _console_only() -> dict[str, SinkConfig]:
    return {"console": ConsoleSinkConfig()}


class AlertingConfig(_Model):
    sinks: dict[str, SinkConfig] = Field(default_factory=_console_only)
    # with no routes, every alert goes to every sink
    routes: list[RouteConfig] = []
    escalations: list[EscalationConfig] = []
    quiet_hours: list[QuietHoursConfig] = []
    dashboard_url: str | None = None
    group_wait: Duration = timedelta(seconds=2)
    repeat_interval: Duration = timedelta(hours=4)  # 0 turns repeats off
    retry_max_age: Duration = timedelta(
        hours=6
    )  # a notification undeliverable this long is dropped
    idempotency_ttl: Duration = timedelta(days=2)

    @model_validator(mode="after")
    def _check_sinks(self) -> AlertingConfig:
        known = set(self.sinks)
        for kind, items in (("route", self.routes), ("escalation", self.escalations)):
            for item in items:
                missing = [s for s in item.sinks if s not in known]
                if missing:
                    raise ValueError(
                        f"{kind} {item.name!r} names unknown sink(s) {missing}; "
                        f"configured sinks: {sorted(known)}"
                    )
        names = [r.name for r in self.routes]
        if len(names) != len(set(names)):
            raise ValueError(f"route names must be unique, got {names}")
        for name in self.sinks:
            if not name or ":" in name:
                raise ValueError(f"sink name {name!r} must be non-empty and contain no ':'")
        return self
