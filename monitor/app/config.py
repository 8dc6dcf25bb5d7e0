"""The service configuration: a YAML file, overridden by environment variables, with secrets.

`load_config(path)` reads the YAML file, lays environment overrides over it, reads secret files,
and validates the lot into a `Config`. Anything wrong raises `ConfigError`, whose one-line message
names the file, the line (when the key came from the file), the key path and what was expected:

    config.yaml:7: tenants[0].timezone: expected an IANA time zone such as 'Europe/Oslo', got 'Mars'

Environment overrides: `PUZZEL_MONITOR_<KEY>__<KEY>...`, keys case-insensitive, `__` between
levels and list indices as numbers, e.g. `PUZZEL_MONITOR_EXPORTER__PORT=9000` or
`PUZZEL_MONITOR_TENANTS__0__CREDENTIALS__CLIENT_SECRET=...`. Values are read as YAML scalars
(`true`, `5s`, `[a, b]`). pydantic-settings' environment source cannot address list items (it
turns `TENANTS__0__...` into a mapping), so the overlay is done here in the same convention.

Secrets are `SecretStr`. Every secret key `x` also accepts `x_file: /path` (Docker/Kubernetes
secrets; one trailing newline is stripped). `load_config(path, secrets_dir=...)` additionally
reads files named like the environment keys without the prefix
(`tenants__0__credentials__password`).
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.alerts.config import AlertingConfig
from monitor.core.durations import parse_duration
from monitor.puzzel.endpoints import EndpointSetting, check_override
from monitor.rules.yaml_reader import YamlProblem, read_value, read_yaml

ENV_PREFIX = "PUZZEL_MONITOR_"
ENV_DELIMITER = "__"
# The spelling the schedules command documents for its Redis; the same as ..._REDIS__URL here,
# so one variable serves every command.
REDIS_URL_ENV = "PUZZEL_MONITOR_REDIS_URL"

PRODUCTION_API_URL = "https://api.puzzel.com/ContactCentre5"
PRODUCTION_AUTH_URL = "https://auth.puzzel.com"
PRODUCTION_ID_URL = "https://app.puzzel.com"


class ConfigError(Exception):
    """The configuration is unusable. `str()` is one line naming the key and what was expected."""

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.line = line


# --- field types ---------------------------------------------------------------------------


def _seconds(value: object) -> float:
    if isinstance(value, str | int | float):
        seconds = parse_duration(value).total_seconds()
    else:
        raise ValueError(f"expected a duration like '5s', '2m', '1h30m' or '2d', got {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a positive duration like '5s', got {value!r}")
    return seconds


def _optional_seconds(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("off", "")):
        return None
    if value is False:
        return None
    return _seconds(value)


Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A positive duration: `5s`, `2m`, `1h30m` or a number of seconds; stored as float seconds."""


def _jitter(value: object) -> float:
    if value in (None, False, 0, "0", "off"):
        return 0.0
    return _seconds(value)


OptionalSeconds = Annotated[float | None, BeforeValidator(_optional_seconds)]
"""A duration, or `off` (None) to disable."""


def _str_id(value: object) -> object:
    # YAML reads customer keys and queue ids as ints; they are identifiers, not numbers
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


StrId = Annotated[str, BeforeValidator(_str_id)]


class _Model(BaseModel):
    """Base: unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # `api:` with only comments under it reads as null: take it as "all defaults"
        if isinstance(data, dict):
            data = dict(data)
            for name, field in cls.model_fields.items():
                if data.get(name, ...) is None and field.is_required() is False:
                    default = field.get_default(call_default_factory=True)
                    if isinstance(default, BaseModel):
                        del data[name]
        return data


# --- tenants ---------------------------------------------------------------------------------


class PuzzelIdCredentialsConfig(_Model):
    """Puzzel ID (OIDC client credentials), the recommended method for a daemon."""

    method: Literal["puzzel_id"] = "puzzel_id"
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    user_id: StrId = Field(min_length=1)


class PasswordCredentialsConfig(_Model):
    """Puzzel Auth service log-in with a user name and password."""

    method: Literal["password"] = "password"
    user_name: str = Field(min_length=1)
    password: SecretStr


def _credentials_method(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return str(getattr(value, "method", None))
    if not isinstance(value, Mapping):
        return None
    method = value.get("method")
    if method is not None:
        return str(method)
    if {"client_id", "client_secret", "client_secret_file"} & value.keys():
        return "puzzel_id"
    if {"user_name", "password", "password_file"} & value.keys():
        return "password"
    return None


CredentialsConfig = Annotated[
    Annotated[PuzzelIdCredentialsConfig, Tag("puzzel_id")]
    | Annotated[PasswordCredentialsConfig, Tag("password")],
    Discriminator(
        _credentials_method,
        custom_error_type="credentials",
        custom_error_message=(
            "expected credentials with 'method: puzzel_id' (client_id, client_secret, user_id) "
            "or 'method: password' (user_name, password)"
        ),
    ),
]
_CREDENTIAL_TAGS = ("puzzel_id", "password")
_SINK_TAGS = ("console", "slack", "slack_dm", "teams", "webhook", "alertmanager")  # `type:` tags


class CadencesConfig(_Model):
    """How often each endpoint kind is polled. `off` disables a kind (e.g. an endpoint whose
    unverified path does not exist on your Puzzel)."""

    user_states: Seconds = 5.0
    queues: OptionalSeconds = 15.0
    agent_stats: OptionalSeconds = 60.0
    queue_ticker: OptionalSeconds = 60.0
    access_points: OptionalSeconds = 60.0
    jitter: Annotated[float, BeforeValidator(_jitter)] = 0.5
    """Each run starts up to this much after its slot (spreads tenants' requests)."""

    @field_validator("user_states", mode="before")
    @classmethod
    def _user_states_stay_on(cls, value: object) -> object:
        # YAML reads `off` as false; say why it is refused rather than "got False"
        if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
            raise ValueError(
                "cannot be turned off: agent states drive every adherence rule; "
                "give an interval such as '5s'"
            )
        return value

    def enabled(self) -> dict[str, float]:
        """Endpoint kind -> interval in seconds, for the kinds that are on."""
        kinds = {
            "user_states": self.user_states,
            "queues": self.queues,
            "agent_stats": self.agent_stats,
            "queue_ticker": self.queue_ticker,
            "access_points": self.access_points,
        }
        return {k: v for k, v in kinds.items() if v is not None}


class RateLimitConfig(_Model):
    """Client-side limit on requests to Puzzel for one tenant (a token bucket)."""

    requests_per_second: float = Field(default=10.0, gt=0)
    burst: int = Field(default=20, ge=1)


def _all_or_list(value: object) -> object:
    if value is None:
        return "all"
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    if isinstance(value, str):
        raise ValueError(f"expected 'all' or a list, got {value!r}")
    if isinstance(value, list):
        return [_str_id(v) for v in value]
    return value


def _endpoint_setting(value: object) -> object:
    # environment overrides arrive as text
    if isinstance(value, str) and value.strip().lower() in ("true", "on", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "off", "no"):
        return False
    return value


class TenantConfig(_Model):
    """One Puzzel customer (tenant) to monitor."""

    customer_key: StrId = Field(min_length=1, validation_alias=AliasChoices("customer_key", "id"))
    name: str | None = None
    timezone: str = "Europe/Oslo"
    credentials: CredentialsConfig
    api_base_url: str = PRODUCTION_API_URL
    auth_base_url: str = PRODUCTION_AUTH_URL
    id_base_url: str = PRODUCTION_ID_URL
    user_groups: Annotated[Literal["all"] | list[str], BeforeValidator(_all_or_list)] = "all"
    visual_queues: Annotated[Literal["all"] | list[str], BeforeValidator(_all_or_list)] = "all"
    cadences: CadencesConfig = CadencesConfig()
    user_state_budget: int = Field(default=10, ge=0)
    """Per-user state requests allowed per agent-state cycle (exact state-entry times)."""
    combined_state_call: bool = True
    """With `user_groups: all`, one unfiltered agent-state call per cycle returns every group
    (Puzzel's `userGroupName` filter is optional); false makes one call per group instead.
    With a list of groups there is always one call per listed group."""
    rate_limit: RateLimitConfig = RateLimitConfig()
    request_timeout: Seconds = 10.0
    endpoints: dict[str, Annotated[EndpointSetting, BeforeValidator(_endpoint_setting)]] = {}
    """Per endpoint (names as in `monitor/puzzel/endpoints.py`): `true` turns an unverified
    endpoint on, `false` turns one off, a path (with that endpoint's placeholders) replaces
    the path and turns it on."""
    pause_types: dict[StrId, str] = {}
    """Pause type id -> name, for tenants whose answers carry only ids (the pause types list
    has no confirmed path); rules and metrics then see the names."""

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected an IANA time zone such as 'Europe/Oslo', got {value!r}"
            ) from None
        return value

    @field_validator("endpoints")
    @classmethod
    def _known_endpoints(cls, value: dict[str, EndpointSetting]) -> dict[str, EndpointSetting]:
        for name, setting in value.items():
            check_override(name, setting)
        return value

    @field_validator("api_base_url", "auth_base_url", "id_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @property
    def id(self) -> str:
        """The tenant label: the Puzzel customer key."""
        return self.customer_key

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# --- the rest --------------------------------------------------------------------------------


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SENTINEL_PORT = 26379


def _sentinel_address(value: object) -> object:
    """`host:port`, `[v6]:port` or a bare host (Sentinel's port 26379) -> (host, port)."""
    if isinstance(value, list | tuple) and len(value) == 2:
        value = f"{value[0]}:{value[1]}"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a Sentinel address 'host:port', got {value!r}")
    text = value.strip()
    host, port = text, str(SENTINEL_PORT)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected a Sentinel address 'host:port', got {value!r}")
    return (host, int(port))


def _sentinel_list(value: object) -> object:
    # an environment override is one string: `a:26379,b:26379`
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    return value


SentinelAddress = Annotated[tuple[str, int], BeforeValidator(_sentinel_address)]


class RedisConfig(_Model):
    """Either one Redis at `url`, or the primary that Redis Sentinel names (`sentinels` +
    `service_name`), found again after a failover. With neither, the local default URL."""

    url: str | None = None
    password: SecretStr | None = None
    """Kept apart from the URL so it can come from a secret file; it overrides one in the URL."""
    sentinels: Annotated[list[SentinelAddress], BeforeValidator(_sentinel_list)] | None = None
    service_name: str | None = Field(default=None, min_length=1)
    """The name the Sentinels monitor the primary under (`sentinel monitor <name> ...`)."""
    sentinel_password: SecretStr | None = None
    """The Sentinels' own password (`requirepass` in sentinel.conf), if they have one."""
    db: int = Field(default=0, ge=0)
    """The database number with Sentinel (a URL names its own)."""

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {value!r}")
        return value

    @field_validator("sentinels")
    @classmethod
    def _some_sentinels(cls, value: list[tuple[str, int]] | None) -> list[tuple[str, int]] | None:
        if value is not None and not value:
            raise ValueError("expected at least one Sentinel address 'host:port', got none")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        sentinel_keys = [k for k in ("sentinels", "service_name", "sentinel_password") if k in data]
        if "url" in data and data["url"] is not None and sentinel_keys:
            raise ValueError(
                f"give either url or sentinels with service_name, not both (got url and "
                f"{' and '.join(sentinel_keys)})"
            )
        if sentinel_keys and not {"sentinels", "service_name"} <= data.keys():
            lacking = "service_name" if "sentinels" in data else "sentinels"
            raise ValueError(
                f"{lacking} is missing: Sentinel needs both sentinels (a list of 'host:port') "
                "and service_name (the name they monitor the primary under)"
            )
        if not sentinel_keys and data.get("url") is None:
            data = {**data, "url": DEFAULT_REDIS_URL}
        if "db" in data and "url" in data:
            raise ValueError("db is for the Sentinel form: a url names its database (/0)")
        return data

    @property
    def uses_sentinel(self) -> bool:
        return self.sentinels is not None


class ExporterConfig(_Model):
    # all interfaces: an exporter is scraped from other hosts by design
    host: str = "0.0.0.0"
    port: int = Field(default=8912, ge=0, le=65535)
    per_agent_series: bool = True


class ApiConfig(_Model):
    token: SecretStr | None = None
    """Bearer token for /api/v1; with none the API answers 503."""


class McpConfig(_Model):
    enabled: bool = False
    """Serve MCP (streamable HTTP) at `/mcp` on the monitor's port (`exporter.port`) in `run`."""
    audit_maxlen: int = Field(default=100_000, ge=100)
    """The audit stream (`pzm:mcp:audit`) is trimmed to about this many entries."""

    @model_validator(mode="before")
    @classmethod
    def _no_own_port(cls, data: Any) -> Any:
        # MCP had its own port before it moved onto the monitor's: say where it went
        if isinstance(data, dict) and ({"host", "port"} & set(data)):
            given = ", ".join(f"mcp.{k}" for k in ("host", "port") if k in data)
            raise ValueError(
                f"{given} is no longer used: MCP is served at /mcp on the monitor's own port "
                "(exporter.host, exporter.port); remove it"
            )
        return data


class LogConfig(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class HistoryConfig(_Model):
    """The adherence history (daily records per agent, team and interval; reports)."""

    retention: Seconds = 90 * 86400.0
    """How long a day's records are kept after the day ends (`90d`)."""
    approvals_retention: Seconds = 90 * 86400.0
    """How long an approval is kept after its range ends, and an entry of the approvals' audit
    trail after it was written (`90d`)."""
    stream_retention: Seconds = 90 * 86400.0
    """How far back the queue-interval stream reaches (`XADD ... MINID ~`; `90d`)."""
    interval_minutes: Literal[15, 30] = 15
    """The default width of a report's team intervals."""
    queue_interval_minutes: Literal[15, 30, 60] = 15
    """The width of the visual queues' interval statistics (offered, answered, ...)."""


class ReplicasConfig(_Model):
    """Several `run` processes with the same configuration sharing the tenants on one Redis
    (README, "Running several replicas")."""

    enabled: bool = False
    """Off: this process works every tenant, as one replica always did."""
    id: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^:\s]+$")
    """This replica's name in leases, metrics and /readyz (default: host name and process id)."""
    lease_ttl: OptionalSeconds = None
    """How long a lease outlives its holder (default: two of the shortest agent-state cadence).
    Leases are renewed four times per TTL; a dead replica's tenants move within TTL + TTL / 4."""


class Config(_Model):
    tenants: list[TenantConfig] = Field(min_length=1)
    redis: RedisConfig = RedisConfig()
    replicas: ReplicasConfig = ReplicasConfig()
    exporter: ExporterConfig = ExporterConfig()
    api: ApiConfig = ApiConfig()
    mcp: McpConfig = McpConfig()
    rules_path: str = "rules"
    alerting: AlertingConfig = AlertingConfig()
    history: HistoryConfig = HistoryConfig()
    log: LogConfig = LogConfig()

    @model_validator(mode="after")
    def _unique_tenants(self) -> Config:
        seen: set[str] = set()
        for tenant in self.tenants:
            if tenant.customer_key in seen:
                raise ValueError(f"tenant {tenant.customer_key!r} is configured twice")
            seen.add(tenant.customer_key)
        return self

    def tenant(self, tenant_id: str) -> TenantConfig:
        for tenant in self.tenants:
            if tenant.customer_key == tenant_id:
                return tenant
        raise KeyError(tenant_id)


# --- loading ---------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


@dataclass
class _Sources:
    """Where keys came from, so errors can point at a line or an environment variable."""

    file: str
    lines: dict[Path_, int]
    env: dict[Path_, str]

    def where(self, path: Path_) -> tuple[str, int | None]:
        for n in range(len(path), 0, -1):
            if path[:n] in self.env:
                return f"environment {self.env[path[:n]]}", None
        # a key that only the environment wrote (a typo in its top-level part) has no line
        for env_path, name in self.env.items():
            if path and env_path[: len(path)] == path:
                return f"environment {name}", None
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.file, self.lines[path[:n]]
        return self.file, None


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Read, overlay and validate the configuration. Raises ConfigError."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{file}: cannot read the configuration: {e.strerror or e}") from None
    try:
        data, node = read_yaml(text)
    except YamlProblem as e:
        where = f"{file}:{e.line}" if e.line else file
        raise ConfigError(f"{where}: {e}", line=e.line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of settings at the top level", line=1)
    lines: dict[Path_, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    sources = _Sources(file, lines, {})
    env = os.environ if environ is None else environ
    _overlay_env(data, env, sources)
    if secrets_dir is not None:
        _overlay_secrets_dir(data, Path(secrets_dir), sources)
    _resolve_secret_files(Config, data, (), sources)
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise _config_error(e, sources) from None


def _index_lines(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[(*path, k)] = key.start_mark.line + 1
            _index_lines(value, (*path, k), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), out)


def _set_path(data: dict[str, Any], path: Path_, value: Any, origin: str) -> None:
    cur: Any = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(cur, list):
            assert isinstance(part, int)
            if part >= len(cur):
                if part != len(cur):
                    raise ConfigError(
                        f"{origin}: list index {part} skips items (the list has {len(cur)})"
                    )
                cur.append({} if not isinstance(nxt, int) else [])
            cur = cur[part]
        else:
            child = cur.get(part)
            if not isinstance(child, dict | list):
                child = [] if isinstance(nxt, int) else {}
                cur[part] = child
            cur = child
    last = path[-1]
    if isinstance(cur, list):
        assert isinstance(last, int)
        if last < len(cur):
            cur[last] = value
        elif last == len(cur):
            cur.append(value)
        else:
            raise ConfigError(f"{origin}: list index {last} skips items (the list has {len(cur)})")
    else:
        cur[last] = value


def _split_key(flat: str) -> Path_:
    return tuple(int(p) if p.isdigit() else p for p in flat.lower().split(ENV_DELIMITER) if p)


def _env_path(name: str) -> Path_:
    if name.upper() == REDIS_URL_ENV:
        return ("redis", "url")
    return _split_key(name[len(ENV_PREFIX) :])


def _overlay_env(data: dict[str, Any], env: Mapping[str, str], sources: _Sources) -> None:
    urls = {
        name: env[name]
        for name in env
        if name.upper().startswith(ENV_PREFIX) and _env_path(name) == ("redis", "url")
    }
    if len(set(urls.values())) > 1:
        raise ConfigError(
            f"environment {' and '.join(sorted(urls))} both set the Redis URL, differently: "
            "keep one",
            key="redis.url",
        )
    for name in sorted(env):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = _env_path(name)
        if not path or isinstance(path[0], int):
            continue
        raw = env[name]
        try:
            value = read_value(raw) if raw.strip() else raw
        except YamlProblem:
            value = raw
        if _is_secret_path(path):
            value = raw  # a secret is taken verbatim, never reinterpreted as YAML
        _set_path(data, path, value, f"environment {name}")
        sources.env[path] = name


def _overlay_secrets_dir(data: dict[str, Any], directory: Path, sources: _Sources) -> None:
    if not directory.is_dir():
        raise ConfigError(f"secrets_dir {str(directory)!r}: expected a directory")
    for entry in sorted(directory.iterdir()):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        path = _split_key(entry.name)
        if not path or isinstance(path[0], int):
            continue
        _set_path(data, path, _read_secret(entry, f"secret file {entry}"), f"secret {entry}")
        sources.env[path] = f"secret file {entry.name}"


def _is_secret_path(path: Path_) -> bool:
    last = path[-1]
    return isinstance(last, str) and (
        last
        in ("client_secret", "password", "sentinel_password", "token", "hmac_key", "bearer_token")
        or last.endswith("url")
    )


def _read_secret(file: Path, what: str) -> str:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {str(file)!r}: {e.strerror or e}") from None
    return text[:-1] if text.endswith("\n") else text


def _model_types(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """The pydantic models an annotation can hold, each with how it is held: `one`, `list` or
    `dict` (values), through Optional, unions and Annotated."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _model_types(args[0])
    if origin in (Union, types.UnionType):
        return [m for arg in args for m in _model_types(arg)]
    if origin in (list, tuple):
        return [("list", m) for _, m in (t for arg in args for t in _model_types(arg))]
    if origin is dict and len(args) == 2:
        return [("dict", m) for _, m in _model_types(args[1])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("one", annotation)]
    return []


def _is_secret_annotation(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _is_secret_annotation(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_is_secret_annotation(a) for a in typing.get_args(annotation))
    return annotation is SecretStr


def _branch_matches(model: type[BaseModel], data: Mapping[str, Any]) -> bool:
    """False when `data` names another branch of a tagged union (`type: slack` vs a webhook)."""
    for name, field in model.model_fields.items():
        if (
            typing.get_origin(field.annotation) is Literal
            and name in data
            and data[name] not in typing.get_args(field.annotation)
        ):
            return False
    return True


def _resolve_secret_files(
    model: type[BaseModel], data: Any, path: Path_, sources: _Sources
) -> None:
    """Replace `x_file: /path` by `x: <contents>` wherever `x` is a SecretStr field."""
    if not isinstance(data, dict) or not _branch_matches(model, data):
        return
    for name, field in model.model_fields.items():
        file_key = f"{name}_file"
        if _is_secret_annotation(field.annotation) and file_key in data:
            key_path = (*path, file_key)
            key = _format_path(key_path)
            where, line = sources.where(key_path)
            label = f"{where}:{line}" if line else where
            if name in data:
                raise ConfigError(
                    f"{label}: {key}: give either {name} or {file_key}, not both",
                    key=key,
                    line=line,
                )
            data[name] = _read_secret(Path(str(data.pop(file_key))), f"{label}: {key}")
        keys = [name]
        if isinstance(field.validation_alias, AliasChoices):
            keys += [c for c in field.validation_alias.choices if isinstance(c, str)]
        for key in (k for k in keys if k in data):
            child = data[key]
            for how, sub in _model_types(field.annotation):
                if how == "list" and isinstance(child, list):
                    for i, item in enumerate(child):
                        _resolve_secret_files(sub, item, (*path, key, i), sources)
                elif how == "dict" and isinstance(child, dict):
                    for k, item in child.items():
                        _resolve_secret_files(sub, item, (*path, key, k), sources)
                elif how == "one":
                    _resolve_secret_files(sub, child, (*path, key), sources)


def _format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _clean_loc(loc: tuple[str | int, ...]) -> Path_:
    # drop discriminator tags and validator-internal segments that are not keys in the file
    parts: list[str | int] = []
    for i, part in enumerate(loc):
        if i > 0 and loc[i - 1] == "credentials" and part in _CREDENTIAL_TAGS:
            continue
        if i > 1 and loc[i - 2] == "sinks" and part in _SINK_TAGS:
            continue
        if isinstance(part, str) and (part.startswith(("function-", "literal[")) or part == "str"):
            continue
        if part in ("list[str]", "is-instance[SecretStr]"):
            continue
        parts.append(part)
    return tuple(parts)


def _explain(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid value"))
    given = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see config.example.yaml)"
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    if kind in ("literal_error",):
        return f"expected {msg.removeprefix('Input should be ')}, got {given!r}"
    if msg.startswith("Input should be "):
        shown = "(a mapping)" if isinstance(given, dict) else repr(given)
        return f"expected {msg.removeprefix('Input should be ')}, got {shown}"
    return msg


def _config_error(error: ValidationError, sources: _Sources) -> ConfigError:
    errors = error.errors(include_url=False)
    # a union reports one error per branch; show the one for the branch the user wrote
    first = errors[0]
    path = _clean_loc(tuple(first["loc"]))
    key = _format_path(path)
    where, line = sources.where(path)
    label = f"{where}:{line}" if line else where
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    explained = _explain(first)
    if _is_secret(path):
        explained = _hide(explained, first.get("input"))
    message = f"{label}: {key}: {explained}" + (more if len(errors) > 1 else "")
    return ConfigError(message, key=key, line=line)


# keys whose values are secrets: a wrong value is described by its type, never shown
_SECRET_KEYS = {
    "password",
    "client_secret",
    "token",
    "bearer_token",
    "bot_token",
    "hmac_key",
    "webhook_url",
}


def _is_secret(path: Path_) -> bool:
    last = path[-1] if path else ""
    # a webhook sink's `url` may carry a token in its query string
    return last in _SECRET_KEYS or (last == "url" and "sinks" in path)


def _hide(text: str, given: object) -> str:
    """`text` without the secret `given` in it (its type is named instead)."""
    shown = f"a value of type {type(given).__name__} (not shown: a secret)"
    for form in (repr(given), str(given)):
        if len(form) >= 3:  # too short to be worth hiding, and would mangle the text
            text = text.replace(form, shown)
    return text


def iter_secrets(config: BaseModel) -> Iterator[str]:
    """Every secret value in `config`, alerting sinks included (for tests and log scrubbing)."""
    for name in type(config).model_fields:
        yield from _secrets_in(getattr(config, name))


def _secrets_in(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        yield from iter_secrets(value)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secrets_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secrets_in(item)
