"""The one place a Redis client is built from the configuration (`run`, `mcp`, `report`,
`schedules`, `approvals`, `doctor`, `demo`, `replay`).

`redis:` names either one server (`url`) or a service that Redis Sentinel watches (`sentinels` +
`service_name`). A Sentinel client asks the Sentinels for the primary before it connects, and again
whenever a connection fails: after a failover the old primary refuses connections (or, demoted,
answers writes with READONLY, which redis-py turns into a ConnectionError), the retry reconnects,
and the Sentinels name the promoted replica. Until they do, commands fail with ConnectionError
(`MasterNotFoundError` among them), TimeoutError or ReadOnlyError, all `RedisError`s, which the
pipelines, the outbox and the Redis guard already wait out as an outage and retry on their next
round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import ExponentialBackoff

if TYPE_CHECKING:  # only named: `report --redis-url` builds a client without importing it
    from monitor.app.config import RedisConfig

# Sentinel answers in microseconds; a Sentinel that takes longer than this is skipped for the next
SENTINEL_TIMEOUT = 2.0


class SentinelRedis(aioredis.Redis):
    """A client of the primary that Sentinel names; closing it closes the Sentinel clients too."""

    sentinels: Sentinel | None = None  # (`sentinel` is a command of the client)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:
            await self.sentinels.aclose()


def redis_client(
    config: RedisConfig, *, url: str | None = None, retry: bool = True, **options: Any
) -> aioredis.Redis:
    """A client for `config` (or for `url`, a command's `--redis-url`, which wins over it).

    With `retry`, a failed command is tried again twice on a fresh connection (50 ms, 100 ms
    apart): after a Redis restart or a failover the pooled connections are dead, and the retry
    reaches the server that answers now instead of reporting an outage that is already over."""
    password = config.password.get_secret_value() if config.password else None
    if url is not None or not config.uses_sentinel:
        return url_client(url or str(config.url), password=password, retry=retry, **options)
    if retry:
        options["retry"] = _retry()
    return _sentinel_client(config, password, options)


def url_client(url: str, *, retry: bool = True, **options: Any) -> aioredis.Redis:
    """A client for one URL, as `redis_client` builds it (a command given `--redis-url` and no
    configuration needs no more, and spares the configuration's import)."""
    if retry:
        options["retry"] = _retry()
    return aioredis.Redis.from_url(url, **options)


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)


def _sentinel_client(
    config: RedisConfig, password: str | None, options: dict[str, Any]
) -> SentinelRedis:
    assert config.sentinels is not None
    assert config.service_name is not None
    # redis-py's Sentinel has no annotations
    sentinel = Sentinel(config.sentinels, sentinel_kwargs=_sentinel_kwargs(config))  # type: ignore[no-untyped-call]
    client: SentinelRedis = sentinel.master_for(
        config.service_name,
        redis_class=SentinelRedis,
        password=password,
        db=config.db,
        **options,
    )
    client.sentinels = sentinel
    return client


def _sentinel_kwargs(config: RedisConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": SENTINEL_TIMEOUT,
        "socket_connect_timeout": SENTINEL_TIMEOUT,
    }
    if config.sentinel_password is not None:
        kwargs["password"] = config.sentinel_password.get_secret_value()
    return kwargs


@dataclass(frozen=True, slots=True)
class RedisReach:
    """What `doctor` says about Redis: the configured form, and whether (and where) it answers."""

    form: str  # "url" or "sentinel"
    target: str  # the URL (password hidden) or `service_name via host:port, ...`
    ok: bool
    primary: str | None = None  # through Sentinel: the primary `host:port` it named
    error: str | None = None

    def describe(self) -> str:
        if not self.ok:
            return f"redis ({self.form}) {self.target}: NOT reachable: {self.error}"
        found = f", primary {self.primary}" if self.primary else ""
        return f"redis ({self.form}) {self.target}: ok{found}"


def describe_target(config: RedisConfig) -> tuple[str, str]:
    """(form, target) for messages; never a password."""
    if config.sentinels is None:
        return "url", redact_url(str(config.url))
    where = ", ".join(f"{host}:{port}" for host, port in config.sentinels)
    return "sentinel", f"{config.service_name} via {where}"


async def check_reach(config: RedisConfig) -> RedisReach:
    """PING the configured Redis (through Sentinel: the primary it names now)."""
    form, target = describe_target(config)
    client = redis_client(config, retry=False, socket_timeout=3, socket_connect_timeout=3)
    try:
        primary = None
        if isinstance(client, SentinelRedis) and client.sentinels is not None:
            host, port = await client.sentinels.discover_master(str(config.service_name))
            primary = f"{host}:{port}"
        await client.ping()
    except (aioredis.RedisError, OSError) as e:
        return RedisReach(form, target, ok=False, error=explain(e))
    finally:
        await client.aclose()
    return RedisReach(form, target, ok=True, primary=primary)


def explain(error: BaseException) -> str:
    """A Redis error for a person: its type and message, without the client's repr that redis-py
    appends to `MasterNotFoundError` (a screenful per Sentinel)."""
    if isinstance(error, MasterNotFoundError):
        found = str(error).split(" : ", 1)[0]
        return (
            f"MasterNotFoundError: {found} (no Sentinel answered, or none monitors that "
            "service_name)"
        )
    return f"{type(error).__name__}: {error}"


def redact_url(url: str) -> str:
    """`url` with any password in it replaced by `***` (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***" if parts.username else ":***"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))
