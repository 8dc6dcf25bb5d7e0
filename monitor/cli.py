"""The `puzzel-monitor` command line. Each subcommand lives in the module that does the work;
this file only parses arguments and dispatches, importing lazily so `--help` stays fast.

Exit codes: 0 ok, 1 a check failed (e.g. `replay --check`), 2 bad configuration or input,
3 a runtime failure (e.g. cannot reach Redis or Puzzel at start-up), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from monitor.core.exits import EXIT_INTERRUPTED

# subcommand -> "module:function"; each function takes the parsed Namespace and returns an exit code
_HANDLERS = {
    "simulate": "monitor.simulator.cli:simulate_command",
    "run": "monitor.app.run:run_command",
    "replay": "monitor.simulator.replay:replay_command",
    "demo": "monitor.demo.demo:demo_command",
    "schedules import": "monitor.app.schedules_cli:import_command",
    "schedules show": "monitor.app.schedules_cli:show_command",
    "rules check": "monitor.app.rules_cli:check_command",
    "doctor": "monitor.app.doctor:doctor_command",
    "report adherence": "monitor.app.report_cli:adherence_command",
    "report intervals": "monitor.app.report_cli:intervals_command",
    "approvals add": "monitor.app.approvals_cli:add_command",
    "approvals withdraw": "monitor.app.approvals_cli:withdraw_command",
    "slack-users import": "monitor.app.slack_users_cli:import_command",
    "slack-users show": "monitor.app.slack_users_cli:show_command",
    "mcp": "monitor.app.mcp_cli:mcp_command",
    "mcp-token": "monitor.app.mcp_cli:token_command",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="puzzel-monitor",
        description="Real-time telemetry and WFM adherence monitoring for Puzzel contact centres.",
    )
    p.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_simulate(sub)
    _add_run(sub)
    _add_replay(sub)
    _add_demo(sub)
    _add_schedules(sub)
    _add_rules(sub)
    _add_doctor(sub)
    _add_report(sub)
    _add_approvals(sub)
    _add_slack_users(sub)
    _add_mcp(sub)
    return p


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("simulate", help="serve a simulated Puzzel API")
    s.add_argument("--agents", type=int, default=200)
    s.add_argument("--groups", type=int, default=5)
    s.add_argument("--queues", type=int, default=4)
    s.add_argument("--port", type=int, default=8931)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--scenario", help="play this scenario file (scripted mode) instead")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--timezone", default="Europe/Oslo")
    s.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    s.add_argument("--error-rate", type=float, default=0.0, help="fraction of calls answered 5xx")
    s.add_argument("--latency", type=float, default=0.0, help="added latency in seconds")
    s.add_argument("--legacy-dates", action="store_true", help="serve /Date(ms)/ dates")
    s.add_argument("--token-ttl", type=float, default=3600.0, help="access token lifetime, s")
    s.add_argument(
        "--profile",
        choices=("full", "public"),
        default="full",
        help="full: every shape the client knows; public: only what public evidence shows",
    )
    s.add_argument(
        "--schedules-out",
        metavar="FILE",
        help="write the random centre's schedules as a JSON schedule file and exit (no serving)",
    )
    s.add_argument("--schedule-days", type=int, default=7, help="days from today in that file")
    s.add_argument(
        "--start-now",
        action="store_true",
        help="with --scenario: move the scenario to start now, for `run` on the wall clock",
    )
    s.add_argument(
        "--schedules-redis",
        metavar="URL",
        help="with --scenario: load its schedules into this Redis (as `run` reads them) first",
    )


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("run", help="run the monitor service")
    r.add_argument("-c", "--config", required=True, help="YAML configuration file")


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = sub.add_parser("replay", help="replay a scenario file through the whole pipeline")
    rp.add_argument("file")
    rp.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    rp.add_argument("--check", action="store_true", help="compare against the scenario's expect")
    rp.add_argument(
        "--redis-url",
        help="use this Redis (keys under pzm-replay:, cleared first) instead of the embedded store",
    )


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("demo", help="simulator + monitor + metrics, with no setup")
    d.add_argument("--redis-url", help="use this Redis instead of the embedded store")
    d.add_argument("--port", type=int, default=8912, help="metrics port")
    d.add_argument("--agents", type=int, default=36)
    d.add_argument("--speed", type=float, default=1.0)
    d.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0: never)")


def _add_schedules(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sch = sub.add_parser("schedules", help="import and show schedules").add_subparsers(
        dest="schedules_command", required=True, metavar="ACTION"
    )
    si = sch.add_parser("import", help="import a CSV, JSON or iCalendar schedule file")
    si.add_argument("file")
    si.add_argument("--tenant", required=True)
    si.add_argument("-c", "--config", help="configuration file (for Redis and the tenant)")
    si.add_argument("--redis-url", help="Redis URL (overrides the config)")
    si.add_argument("--timezone", help="time zone of zone-less times (default: the tenant's)")
    si.add_argument("--rules", help="rules directory whose activities are allowed")
    si.add_argument("--format", choices=["csv", "json", "ics"], help="default: from the suffix")
    si.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    ss = sch.add_parser("show", help="print an agent's day")
    ss.add_argument("--tenant", required=True)
    ss.add_argument("--agent", required=True)
    ss.add_argument("--date", help="local date YYYY-MM-DD (default: today)")
    ss.add_argument("-c", "--config")
    ss.add_argument("--redis-url")
    ss.add_argument("--timezone")


def _add_rules(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rl = sub.add_parser("rules", help="validate rule and activity files").add_subparsers(
        dest="rules_command", required=True, metavar="ACTION"
    )
    rc = rl.add_parser("check", help="validate the files in rules/")
    rc.add_argument("path", nargs="?", default="rules")
    rc.add_argument("-c", "--config", help="also check stale_data against this config's cadences")


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dr = sub.add_parser("doctor", help="call every Puzzel endpoint once and say what works")
    dr.add_argument("-c", "--config", required=True, help="YAML configuration file")
    dr.add_argument("--tenant", metavar="KEY", help="check only the tenant with this customer key")
    dr.add_argument(
        "--record", metavar="DIR", help="write each answer, personal data replaced, as a fixture"
    )


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rep = sub.add_parser("report", help="adherence reports from the history").add_subparsers(
        dest="report_command", required=True, metavar="REPORT"
    )
    ra = rep.add_parser("adherence", help="per agent and day: one CSV (or JSON)")
    ra.add_argument("--tenant", required=True, metavar="KEY")
    ra.add_argument("--from", dest="from_", required=True, metavar="DATE", help="YYYY-MM-DD")
    ra.add_argument("--to", required=True, metavar="DATE", help="YYYY-MM-DD (inclusive)")
    ra.add_argument("--team")
    ra.add_argument("--agent")
    ra.add_argument("--format", choices=["csv", "json"], default="csv")
    ra.add_argument("-c", "--config", help="configuration file (for Redis and the time zone)")
    ra.add_argument("--redis-url", help="Redis URL (overrides the config)")
    ra.add_argument("--timezone", help="the tenant's time zone (default: config, or stored)")
    ri = rep.add_parser("intervals", help="per visual queue and interval: one CSV (or JSON)")
    ri.add_argument("--tenant", required=True, metavar="KEY")
    ri.add_argument("--from", dest="from_", required=True, metavar="DATE", help="YYYY-MM-DD")
    ri.add_argument("--to", required=True, metavar="DATE", help="YYYY-MM-DD (inclusive)")
    ri.add_argument("--queue", help="one visual queue id")
    ri.add_argument("--format", choices=["csv", "json"], default="csv")
    ri.add_argument("-c", "--config")
    ri.add_argument("--redis-url")
    ri.add_argument("--timezone")


def _add_approvals(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ap = sub.add_parser("approvals", help="approve (excuse) an agent's time range").add_subparsers(
        dest="approvals_command", required=True, metavar="ACTION"
    )
    add = ap.add_parser("add", help="approve a time range of one agent, with a reason")
    add.add_argument("--agent", required=True)
    add.add_argument("--start", required=True, help="ISO 8601 (no offset: the tenant's time)")
    add.add_argument("--end", required=True)
    add.add_argument("--reason", required=True)
    wd = ap.add_parser("withdraw", help="withdraw an approval (kept in the audit trail)")
    wd.add_argument("--id", required=True)
    for p in (add, wd):
        p.add_argument("--tenant", required=True, metavar="KEY")
        p.add_argument("--by", required=True, help="who (kept in the audit trail)")
        p.add_argument("-c", "--config")
        p.add_argument("--redis-url")
        p.add_argument("--timezone")


def _add_slack_users(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    su = sub.add_parser(
        "slack-users", help="map Puzzel users to Slack users (for direct messages to agents)"
    ).add_subparsers(dest="slack_users_command", required=True, metavar="ACTION")
    si = su.add_parser("import", help="import a CSV, YAML or JSON mapping file")
    si.add_argument("file")
    si.add_argument("--format", choices=["csv", "yaml"], help="default: from the suffix")
    si.add_argument("--replace", action="store_true", help="unmap agents not in the file")
    si.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    ss = su.add_parser("show", help="list the mapping and what Slack answered for e-mails")
    for p in (si, ss):
        p.add_argument("--tenant", required=True)
        p.add_argument("-c", "--config", help="configuration file (for Redis and the tenant)")
        p.add_argument("--redis-url", help="Redis URL (overrides the config)")


def _add_mcp(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser(
        "mcp", help="the MCP server on stdio, for a desktop assistant ($PUZZEL_MCP_TOKEN)"
    )
    m.add_argument("-c", "--config", required=True, help="YAML configuration file")
    tok = sub.add_parser("mcp-token", help="create, revoke and list MCP access tokens")
    act = tok.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    cr = act.add_parser("create", help="create a token (printed once) or replace one by name")
    cr.add_argument("name")
    cr.add_argument(
        "--scope",
        action="append",
        choices=("read", "ack", "approve"),
        help="repeatable; default: read only (ack: acknowledge and snooze alerts)",
    )
    cr.add_argument("--tenant", action="append", help="repeatable; default: every tenant")
    cr.add_argument("--team", action="append", help="repeatable; default: every team")
    cr.add_argument("--expires", metavar="DURATION", help="e.g. 90d, 12h; default: never")
    rv = act.add_parser("revoke", help="revoke a token by name")
    rv.add_argument("name")
    act.add_parser("list", help="list tokens (names, scopes, reach, expiry; never the token)")
    for p in (cr, rv, act.choices["list"]):
        p.add_argument("-c", "--config", required=True, help="YAML configuration file")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    key = args.command
    if key == "schedules":
        key = f"schedules {args.schedules_command}"
    elif key == "rules":
        key = f"rules {args.rules_command}"
    elif key == "report":
        key = f"report {args.report_command}"
    elif key == "slack-users":
        key = f"slack-users {args.slack_users_command}"
    elif key == "approvals":
        key = f"approvals {args.approvals_command}"
    module_name, func_name = _HANDLERS[key].split(":")
    handler = getattr(importlib.import_module(module_name), func_name)
    try:
        code: int = handler(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
