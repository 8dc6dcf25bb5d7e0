"""`puzzel-monitor approvals add --tenant KEY --agent ID --start TIME --end TIME --reason TEXT
--by NAME` and `approvals withdraw --tenant KEY --id ID --by NAME` (each with `-c CONFIG |
--redis-url URL`, `--timezone`): the approved-exceptions API from the command line. Times are
ISO 8601; without an offset, the tenant's local time. Exit 0 ok (the approval as JSON on
stdout), 2 a bad parameter or no such approval, 3 Redis unreachable."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redis.exceptions import RedisError

from monitor.app.report_cli import connect, resolve_zone
from monitor.core.clock import SystemClock
from monitor.core.exits import EXIT_INPUT, EXIT_OK, EXIT_RUNTIME
from monitor.history.approvals import ApprovalStore
from monitor.history.approvals_api import request_from
from monitor.history.report import ReportError
from monitor.history.store import DEFAULT_RETENTION, HistoryStore


def add_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    return _run(args, _add, stdout or sys.stdout)


def withdraw_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    return _run(args, _withdraw, stdout or sys.stdout)


Action = Callable[[argparse.Namespace, ApprovalStore, ZoneInfo], Awaitable[dict[str, Any] | str]]


def _run(args: argparse.Namespace, action: Action, out: TextIO) -> int:
    conn = connect(args)
    if isinstance(conn, int):
        return conn
    redis, config = conn

    async def go() -> dict[str, Any] | str:
        try:
            tz = ZoneInfo(await resolve_zone(args, config, redis))
            keep = (
                timedelta(seconds=config.history.approvals_retention)
                if config is not None
                else DEFAULT_RETENTION
            )
            history = HistoryStore(
                redis, tenants={args.tenant: tz}, clock=SystemClock(), approvals_retention=keep
            )
            store = ApprovalStore(history)
            return await action(args, store, tz)
        except ZoneInfoNotFoundError:
            return f"--timezone={args.timezone!r}: unknown time zone"
        except (ReportError, ValueError) as e:
            return str(e)
        finally:
            await redis.aclose()

    try:
        result = asyncio.run(go())
    except (RedisError, OSError) as e:
        print(f"puzzel-monitor approvals: cannot reach Redis: {e}", file=sys.stderr)
        return EXIT_RUNTIME
    if isinstance(result, str):
        print(f"puzzel-monitor approvals: {result}", file=sys.stderr)
        return EXIT_INPUT
    out.write(json.dumps(result, indent=2) + "\n")
    return EXIT_OK


async def _add(
    args: argparse.Namespace, store: ApprovalStore, tz: ZoneInfo
) -> dict[str, Any] | str:
    body = {"start": args.start, "end": args.end, "reason": args.reason}
    return await store.approve(args.tenant, request_from(body, args.agent, args.by, tz))


async def _withdraw(
    args: argparse.Namespace, store: ApprovalStore, tz: ZoneInfo
) -> dict[str, Any] | str:
    doc = await store.withdraw(args.tenant, args.id, args.by)
    return doc if doc is not None else f"--id={args.id!r}: no such active approval"
