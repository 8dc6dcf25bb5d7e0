"""`puzzel-monitor mcp` (the MCP server on stdio, for a desktop assistant) and
`puzzel-monitor mcp-token create|revoke|list`.

The stdio server is its own process, started by the assistant: it reads what `run` keeps in
Redis (the engine's memory, alerts, mutes, schedules) and does not poll Puzzel, so connection
status is only on the running monitor's HTTP endpoint. Its token comes from the environment
($PUZZEL_MCP_TOKEN), never from an argument (which `ps` would show).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.exceptions import RedisError

from monitor.alerts.snooze import SnoozeStore
from monitor.alerts.store import AlertStore
from monitor.app.config import Config, ConfigError, iter_secrets, load_config
from monitor.app.logging import configure_logging
from monitor.app.redis_client import redis_client
from monitor.core.clock import Clock, SystemClock
from monitor.core.durations import parse_duration
from monitor.core.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_RUNTIME
from monitor.history.store import HistoryStore
from monitor.mcp.server import monitor_server
from monitor.mcp.tokens import Grant, TokenRejected, TokenStore
from monitor.mcp.view import MonitorView, stored_tenants
from monitor.pipeline.state_store import RedisEngineStateStore
from monitor.schedules.store import ScheduleStore

TOKEN_ENV = "PUZZEL_MCP_TOKEN"  # not PUZZEL_MONITOR_*: those override configuration keys
KEY_PREFIX = "pzm"  # as `run` (monitor.app.wiring.Monitor)


class _Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _config(args: argparse.Namespace) -> Config:
    try:
        return load_config(args.config)
    except ConfigError as e:
        raise _Fail(EXIT_CONFIG, f"configuration error: {e}") from None


def _redis(config: Config) -> aioredis.Redis:
    return redis_client(config.redis)


def _run(name: str, work: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(work)
    except _Fail as e:
        print(f"puzzel-monitor {name}: {e}", file=sys.stderr)
        return e.code
    except (RedisError, OSError) as e:
        print(f"puzzel-monitor {name}: cannot reach Redis: {e}", file=sys.stderr)
        return EXIT_RUNTIME


# --- mcp (stdio) ------------------------------------------------------------------------------


def mcp_command(args: argparse.Namespace) -> int:
    """`puzzel-monitor mcp -c config.yaml`: stdout is the protocol, so logs go to stderr."""
    try:
        config = _config(args)
    except _Fail as e:
        print(f"puzzel-monitor mcp: {e}", file=sys.stderr)
        return e.code
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        print(f"puzzel-monitor mcp: set ${TOKEN_ENV} (see `mcp-token create`)", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging("warning", "json", stream=sys.stderr, secrets=[*iter_secrets(config), token])
    return _run("mcp", _serve_stdio(config, SecretStr(token), SystemClock()))


async def _serve_stdio(config: Config, token: SecretStr, clock: Clock) -> int:
    redis = _redis(config)
    try:
        try:  # refused at start rather than on every call: the assistant shows this message
            await TokenStore(redis, clock=clock, key_prefix=KEY_PREFIX).verify(
                token.get_secret_value()
            )
        except TokenRejected as e:
            raise _Fail(EXIT_CONFIG, str(e)) from None
        view = MonitorView(
            stored_tenants(
                RedisEngineStateStore(redis, key_prefix=KEY_PREFIX),
                [t.customer_key for t in config.tenants],
            ),
            alerts=AlertStore(redis, key_prefix=KEY_PREFIX),
            snoozes=SnoozeStore(redis, clock=clock, key_prefix=KEY_PREFIX),
            schedules=ScheduleStore(redis, key_prefix=KEY_PREFIX),
            clock=clock,
            history=HistoryStore(
                redis,
                tenants={t.customer_key: ZoneInfo(t.timezone) for t in config.tenants},
                clock=clock,
                key_prefix=KEY_PREFIX,
                approvals_retention=timedelta(seconds=config.history.approvals_retention),
            ),
        )
        server, _, _ = monitor_server(
            view, redis, key_prefix=KEY_PREFIX, audit_maxlen=config.mcp.audit_maxlen, token=token
        )
        await server.run_stdio_async()
        return EXIT_OK
    finally:
        await redis.aclose()


# --- mcp-token --------------------------------------------------------------------------------


def token_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    """`puzzel-monitor mcp-token create|revoke|list -c config.yaml`."""
    out = stdout or sys.stdout
    try:
        config = _config(args)
        ttl = parse_duration(args.expires) if getattr(args, "expires", None) else None
    except _Fail as e:
        print(f"puzzel-monitor mcp-token: {e}", file=sys.stderr)
        return e.code
    except ValueError as e:
        print(f"puzzel-monitor mcp-token: --expires: {e}", file=sys.stderr)
        return EXIT_CONFIG
    return _run("mcp-token", _tokens(config, args, ttl, out, SystemClock()))


async def _tokens(
    config: Config, args: argparse.Namespace, ttl: timedelta | None, out: TextIO, clock: Clock
) -> int:
    redis = _redis(config)
    store = TokenStore(redis, clock=clock, key_prefix=KEY_PREFIX)
    try:
        if args.token_command == "create":
            return await _create(store, config, args, ttl, out)
        if args.token_command == "revoke":
            if await store.revoke(args.name):
                print(f"revoked {args.name}", file=out)
                return EXIT_OK
            print(f"puzzel-monitor mcp-token: no token named {args.name!r}", file=sys.stderr)
            return EXIT_FAILED
        for grant in await store.list():
            print(_line(grant, clock), file=out)
        return EXIT_OK
    finally:
        await redis.aclose()


async def _create(
    store: TokenStore, config: Config, args: argparse.Namespace, ttl: timedelta | None, out: TextIO
) -> int:
    known = {t.customer_key for t in config.tenants}
    unknown = sorted(set(args.tenant or ()) - known)
    if unknown:
        raise _Fail(EXIT_CONFIG, f"--tenant: not configured: {', '.join(unknown)}")
    try:
        token, grant = await store.create(
            args.name,
            scopes=args.scope or ["read"],
            tenants=args.tenant or None,
            teams=args.team or None,
            ttl=ttl,
        )
    except ValueError as e:
        raise _Fail(EXIT_CONFIG, f"--scope: {e}") from None
    print(token.get_secret_value(), file=out)
    print(f"created {_line(grant, None)}; the token is shown only now", file=sys.stderr)
    return EXIT_OK


def _line(grant: Grant, clock: Clock | None) -> str:
    expires = grant.expires_at.isoformat() if grant.expires_at else "never"
    if clock is not None and grant.expires_at is not None and grant.expires_at <= clock.now():
        expires += " (expired)"
    return (
        f"{grant.name}  scopes={','.join(sorted(grant.scopes))}"
        f"  tenants={','.join(grant.tenants) if grant.tenants is not None else 'all'}"
        f"  teams={','.join(grant.teams) if grant.teams is not None else 'all'}"
        f"  expires={expires}"
    )
