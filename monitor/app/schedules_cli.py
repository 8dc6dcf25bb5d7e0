"""`puzzel-monitor schedules import|show`: the imperative shell around the importers and store.

Exit codes as in monitor.cli: 0 ok, 2 bad input or configuration (nothing written),
3 Redis unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.app.config import RedisConfig
from monitor.app.redis_client import describe_target, redact_url, redis_client
from monitor.core.clock import SystemClock
from monitor.core.exits import EXIT_INPUT, EXIT_OK, EXIT_RUNTIME
from monitor.engine.model import Segment
from monitor.schedules.errors import ScheduleImportError
from monitor.schedules.importers import DEFAULT_ACTIVITIES, Format, read_schedule_file
from monitor.schedules.store import ScheduleStore

REDIS_URL_ENV = "PUZZEL_MONITOR_REDIS_URL"
# the configuration's own override of `redis.url` works here too, without -c
CONFIG_REDIS_URL_ENV = "PUZZEL_MONITOR_REDIS__URL"


__all__ = ["redact_url"]  # kept here for callers of the old location


class _Fail(Exception):
    """Stop with an exit code and a message for stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Settings:
    tenant: str
    tz: ZoneInfo
    redis: RedisConfig  # `--redis-url` and the variables already folded in
    rules_path: str | None
    rules_explicit: bool  # given with --rules (failing to read them is then an error)


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Tenant time zone and Redis from the flags, the environment and the configuration file:
    `--redis-url` > $PUZZEL_MONITOR_REDIS_URL (or $PUZZEL_MONITOR_REDIS__URL) > config
    `redis.url` > the default; `--timezone`
    > the tenant's configured time zone."""
    tenant: str = args.tenant
    config: Any = None
    if getattr(args, "config", None):
        from monitor.app.config import ConfigError, load_config  # noqa: PLC0415  # only with -c

        try:
            config = load_config(args.config)
        except ConfigError as e:
            raise _Fail(EXIT_INPUT, str(e)) from None
    zone: str | None = getattr(args, "timezone", None)
    if zone is None and config is not None:
        try:
            zone = config.tenant(tenant).timezone
        except KeyError:
            raise _Fail(EXIT_INPUT, f"{args.config}: no tenant {tenant!r} configured") from None
    if zone is None:
        raise _Fail(EXIT_INPUT, "no time zone: give --timezone or a configuration with -c")
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Fail(EXIT_INPUT, f"unknown time zone {zone!r} (expected e.g. Europe/Oslo)") from None
    url = (
        getattr(args, "redis_url", None)
        or os.environ.get(REDIS_URL_ENV)
        or os.environ.get(CONFIG_REDIS_URL_ENV)
    )
    redis = config.redis if config is not None else RedisConfig()
    if url:  # the flag or a variable names one server; a configured password still applies
        redis = RedisConfig(url=url, password=redis.password)
    rules = getattr(args, "rules", None)
    explicit = rules is not None
    if rules is None and config is not None and Path(config.rules_path).exists():
        rules = config.rules_path
    return Settings(tenant, tz, redis, rules, explicit)


def known_activities(rules_path: str | None, *, explicit: bool = False) -> set[str]:
    """Activity names from the rule files (monitor.rules.loader), else the contract defaults.
    Rules named with --rules must load; otherwise a failure falls back with a warning."""
    try:
        loader = importlib.import_module("monitor.rules.loader")
    except ImportError:
        if explicit:
            raise _Fail(EXIT_INPUT, "cannot read rules: monitor.rules.loader is missing") from None
        return set(DEFAULT_ACTIVITIES)
    load = getattr(loader, "load_rules", None)
    if load is None:
        return set(DEFAULT_ACTIVITIES)
    if rules_path is None and not Path("rules").is_dir():
        # no rules anywhere: the engine's built-in defaults, without a warning
        defaults = getattr(loader, "default_ruleset", None)
        return set(defaults().activities) if defaults else set(DEFAULT_ACTIVITIES)
    try:
        ruleset = load(rules_path) if rules_path is not None else load()
    except Exception as e:  # the loader's own error types; any of them means bad rules
        if explicit:
            raise _Fail(EXIT_INPUT, f"cannot read rules: {e}") from None
        print(f"warning: no rules loaded ({e}); default activities only", file=sys.stderr)
        return set(DEFAULT_ACTIVITIES)
    return set(ruleset.activities)


def _store(settings: Settings) -> tuple[aioredis.Redis, ScheduleStore]:
    client = redis_client(settings.redis)
    return client, ScheduleStore(client)


def import_command(args: argparse.Namespace) -> int:
    """Validate a schedule file in full, then write it atomically (unless --dry-run)."""
    try:
        settings = resolve_settings(args)
        activities = known_activities(settings.rules_path, explicit=settings.rules_explicit)
        fmt: Format | None = getattr(args, "format", None)
        plan = read_schedule_file(
            Path(args.file), tz=settings.tz, known_activities=activities, fmt=fmt
        )
        for warning in plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        span = ""
        if plan.dates:
            span = f" {min(plan.dates)}..{max(plan.dates)}"
        what = (
            f"{len(plan.segments)} segment(s) for {len(plan.agents)} agent(s) on "
            f"{len(plan.dates)} date(s){span}"
        )
        if getattr(args, "dry_run", False):
            print(f"{args.file}: valid: {what} (dry run, nothing written)")
            return EXIT_OK
        result = asyncio.run(_apply(settings, plan))
        print(
            f"{args.file}: imported {what} into tenant {settings.tenant} "
            f"(replaced {result.removed} segment(s); schedule version {result.version})"
        )
        return EXIT_OK
    except ScheduleImportError as e:
        for issue in e.issues:
            print(f"error: {issue}", file=sys.stderr)
        print(f"{len(e.issues)} problem(s); nothing was imported", file=sys.stderr)
        return EXIT_INPUT
    except _Fail as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code


async def _apply(settings: Settings, plan: Any) -> Any:
    client, store = _store(settings)
    try:
        return await store.apply(settings.tenant, plan)
    except (RedisError, OSError) as e:
        raise _Fail(
            EXIT_RUNTIME, f"cannot write to Redis at {describe_target(settings.redis)[1]}: {e}"
        ) from None
    finally:
        await client.aclose()


def show_command(args: argparse.Namespace) -> int:
    """Print one agent's local day as a table."""
    try:
        settings = resolve_settings(args)
        if args.date:
            try:
                day = date.fromisoformat(args.date)
            except ValueError:
                raise _Fail(EXIT_INPUT, f"--date: expected YYYY-MM-DD, got {args.date!r}") from None
        else:
            day = SystemClock().now().astimezone(settings.tz).date()
        segments = asyncio.run(_agent_day(settings, args.agent, day))
    except _Fail as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    print_day(
        sys.stdout,
        tenant=settings.tenant,
        agent=args.agent,
        day=day,
        tz=settings.tz,
        segments=segments,
    )
    return EXIT_OK


async def _agent_day(settings: Settings, agent: str, day: date) -> list[Segment]:
    client, store = _store(settings)
    try:
        return await store.agent_day(settings.tenant, settings.tz, agent, day)
    except (RedisError, OSError) as e:
        raise _Fail(
            EXIT_RUNTIME, f"cannot read from Redis at {describe_target(settings.redis)[1]}: {e}"
        ) from None
    finally:
        await client.aclose()


def format_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _clock(moment: datetime, day: date, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    shift = (local.date() - day).days
    text = local.strftime("%H:%M" if local.second == 0 else "%H:%M:%S")
    return f"{text} ({shift:+d}d)" if shift else text


def print_day(
    out: TextIO,
    *,
    tenant: str,
    agent: str,
    day: date,
    tz: ZoneInfo,
    segments: Collection[Segment],
) -> None:
    """The table `show` prints; times are local, a time on another date is marked ±Nd."""
    out.write(f"tenant {tenant}, agent {agent}, {day:%A %Y-%m-%d} ({tz.key})\n")
    if not segments:
        out.write("nothing scheduled\n")
        return
    rows = [("start", "end", "activity", "duration")]
    total = timedelta(0)
    for s in segments:
        rows.append(
            (
                _clock(s.start, day, tz),
                _clock(s.end, day, tz),
                s.activity,
                format_duration(s.end - s.start),
            )
        )
        if s.activity != "off":
            total += s.end - s.start
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        line = f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}"
        out.write(line.rstrip() + "\n")
    out.write(f"scheduled {format_duration(total)} (not counting 'off')\n")
