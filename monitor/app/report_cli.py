"""`puzzel-monitor report adherence --tenant KEY --from DATE --to DATE [--team T] [--agent A]
[--format csv|json] [-c CONFIG | --redis-url URL]`: the adherence history as one CSV (the
default) or JSON on stdout.

Exit codes: 0 ok, 2 a bad parameter (named, with the value given) or configuration, 3 Redis
unreachable. The tenant's time zone: `--timezone` > the configuration > the one the history
stored when it wrote the tenant's records.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.app.redis_client import redis_client, url_client
from monitor.core.clock import SystemClock
from monitor.core.exits import EXIT_INPUT, EXIT_OK, EXIT_RUNTIME
from monitor.history.report import (
    ReportError,
    adherence_csv,
    adherence_report,
    intervals_csv,
    intervals_report,
    parse_query,
)
from monitor.history.store import HistoryStore, stored_timezone

if TYPE_CHECKING:
    from monitor.app.config import Config

REDIS_URL_ENV = "PUZZEL_MONITOR_REDIS_URL"


def _fail(message: str) -> int:
    print(f"puzzel-monitor report: {message}", file=sys.stderr)
    return EXIT_INPUT


def connect(args: argparse.Namespace) -> tuple[aioredis.Redis, Config | None] | int:
    """Redis (`--redis-url` > $PUZZEL_MONITOR_REDIS_URL > the configuration > the default) and
    the configuration, if given; or the exit code of a configuration that does not load."""
    url = args.redis_url or os.environ.get(REDIS_URL_ENV)
    if not args.config and url:
        # The configuration's models (and the Puzzel client they name) take half a second to
        # import, a third of a month's report from the command line: not needed for a URL.
        return url_client(url), None
    from monitor.app.config import ConfigError, RedisConfig, load_config  # noqa: PLC0415

    config: Config | None = None
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as e:
            return _fail(str(e))
    return redis_client(config.redis if config else RedisConfig(), url=url), config


def adherence_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    return _command(args, "adherence", stdout or sys.stdout)


def intervals_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    return _command(args, "intervals", stdout or sys.stdout)


def _command(args: argparse.Namespace, kind: str, out: TextIO) -> int:
    conn = connect(args)
    if isinstance(conn, int):
        return conn
    redis, config = conn
    try:
        return asyncio.run(_report(args, config, redis, out, kind))
    except (RedisError, OSError) as e:
        print(f"puzzel-monitor report: cannot reach Redis: {e}", file=sys.stderr)
        return EXIT_RUNTIME


async def resolve_zone(
    args: argparse.Namespace, config: Config | None, redis: aioredis.Redis
) -> str:
    if args.timezone:
        return str(args.timezone)
    if config is not None:
        try:
            return config.tenant(args.tenant).timezone
        except KeyError:
            raise ReportError("--tenant", args.tenant, "not in the configuration") from None
    zone = await stored_timezone(redis, args.tenant)
    if zone is None:
        raise ReportError("--tenant", args.tenant, "no records (and no --timezone given)")
    return zone


async def _report(
    args: argparse.Namespace, config: Config | None, redis: aioredis.Redis, out: TextIO, kind: str
) -> int:
    try:
        try:
            zone = await resolve_zone(args, config, redis)
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            if isinstance(e, ReportError):
                raise
            raise ReportError("--timezone", args.timezone, "unknown time zone") from None
        store = HistoryStore(redis, tenants={args.tenant: tz}, clock=SystemClock())
        params = {"tenant": args.tenant, "from": args.from_, "to": args.to}
        filters = {"team": getattr(args, "team", None), "agent": getattr(args, "agent", None)}
        query = parse_query(store.tenants, params | filters)
        if kind == "adherence":
            report = await adherence_report(store, query, agent_days_only=args.format == "csv")
        else:
            report = await intervals_report(store, query)
    except ReportError as e:
        return _fail(f"--{e}" if not str(e).startswith("--") else str(e))
    finally:
        await redis.aclose()
    queue = getattr(args, "queue", None)
    if kind == "intervals" and queue is not None:
        report["intervals"] = [r for r in report["intervals"] if r["queue"] == queue]
    if args.format == "json":
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        out.write(adherence_csv(report) if kind == "adherence" else intervals_csv(report))
    return EXIT_OK
