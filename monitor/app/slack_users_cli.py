"""`puzzel-monitor slack-users import FILE --tenant KEY` and `slack-users show --tenant KEY`
(each with `-c CONFIG | --redis-url URL`): the mapping of Puzzel users to Slack users that the
Slack DM sink reads. A file is validated in full (every problem by file, line and field) before
anything is written, then applied in one transaction. Exit 0 ok, 2 a bad file, tenant or
configuration (nothing written), 3 Redis unreachable."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.alerts.slack_users import (
    SlackUsersError,
    SlackUserStore,
    describe,
    format_for,
    parse_slack_users,
)
from monitor.app.config import Config
from monitor.app.report_cli import connect
from monitor.core.exits import EXIT_INPUT, EXIT_OK, EXIT_RUNTIME

PROG = "puzzel-monitor slack-users"


def import_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    path = Path(args.file)
    try:
        fmt = args.format or format_for(path)
        data = path.read_bytes()
        entries = parse_slack_users(data, fmt=fmt, source=str(path))
    except SlackUsersError as e:
        for issue in e.issues:
            print(f"error: {issue}", file=sys.stderr)
        print(f"{len(e.issues)} problem(s); nothing was imported", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"{PROG}: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_INPUT
    by_email = sum("@" in t for t in entries.values())
    what = f"{len(entries)} agent(s), {by_email} by e-mail"
    if args.dry_run:
        out.write(f"{path}: valid: {what} (dry run, nothing written)\n")
        return EXIT_OK
    result = _with_store(args, lambda s: s.apply(args.tenant, entries, replace=args.replace))
    if isinstance(result, int):
        return result
    counts = result.as_dict()
    out.write(
        f"{path}: imported {what} into tenant {args.tenant}: {counts['added']} added, "
        f"{counts['changed']} changed, {counts['removed']} removed; {counts['total']} mapped\n"
    )
    return EXIT_OK


def show_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    result = _with_store(args, lambda s: describe(s, args.tenant))
    if isinstance(result, int):
        return result
    out.write(f"tenant {args.tenant}: {result['count']} agent(s) mapped\n")
    for row in result["agents"]:
        if "email" in row:
            answer = {None: "not looked up yet", "": "UNKNOWN to Slack"}.get(
                row["resolved"], row["resolved"]
            )
            out.write(f"  {row['puzzel_user_id']:<12} {row['email']}  -> {answer}\n")
        else:
            out.write(f"  {row['puzzel_user_id']:<12} {row['slack_user_id']}\n")
    if result["unresolvable"]:
        out.write(
            f"{result['unresolvable']} e-mail(s) unknown to Slack: their alerts are dropped\n"
        )
    return EXIT_OK


def _with_store(args: argparse.Namespace, action: Any) -> Any:
    """Run `action(store)` against the configured Redis; an exit code if that fails."""
    conn = connect(args)
    if isinstance(conn, int):
        return conn
    redis, config = conn
    problem = _unknown_tenant(args.tenant, config)
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return EXIT_INPUT

    async def go(client: aioredis.Redis) -> Any:
        try:
            return await action(SlackUserStore(client))
        finally:
            await client.aclose()

    try:
        return asyncio.run(go(redis))
    except (RedisError, OSError) as e:
        print(f"{PROG}: cannot reach Redis: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_RUNTIME


def _unknown_tenant(tenant: str, config: Config | None) -> str | None:
    if config is None:
        return None
    known = [t.customer_key for t in config.tenants]
    if tenant in known:
        return None
    return f"--tenant={tenant!r}: not a configured tenant (configured: {', '.join(known)})"
