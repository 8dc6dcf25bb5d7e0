"""`puzzel-monitor simulate`: serve a simulated Puzzel tenant until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

from monitor.app.config import RedisConfig
from monitor.app.redis_client import redis_client
from monitor.core.clock import SystemClock
from monitor.core.exits import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME
from monitor.simulator.app import base_urls, create_app
from monitor.simulator.centre import RandomCentre
from monitor.simulator.clocks import ShiftedClock
from monitor.simulator.faults import Faults
from monitor.simulator.profiles import DEFAULT_PROFILE, PROFILE_SUMMARIES
from monitor.simulator.publish import load_scenario_schedules, started_now, write_schedules
from monitor.simulator.scenario import ScenarioError, load_scenario
from monitor.simulator.scripted import ScriptedCentre
from monitor.simulator.simulator import Simulator


def build_simulator(args: argparse.Namespace) -> tuple[Simulator, str]:
    """The simulator the arguments describe, and a one-line description of it."""
    faults = Faults(
        latency=args.latency,
        error_rate=args.error_rate,
        legacy_dates=args.legacy_dates,
        seed=args.seed,
    )
    profile = getattr(args, "profile", DEFAULT_PROFILE)
    token_ttl = getattr(args, "token_ttl", None)
    if token_ttl:
        faults.token_ttl = timedelta(seconds=token_ttl)
    if args.scenario:
        scenario = load_scenario(args.scenario)
        if getattr(args, "start_now", False):
            scenario = started_now(scenario, SystemClock().now())
        clock = ShiftedClock(scenario.start, args.speed)
        sim = Simulator.from_scenario(scenario, clock=clock, faults=faults, profile=profile)
        local_start = scenario.start.astimezone(scenario.timezone)
        what = (
            f"scripted mode: {scenario.name!r} ({len(scenario.agents)} agents, "
            f"{len(scenario.queues)} queues) from {local_start.isoformat()}"
        )
        return sim, what
    clock = ShiftedClock(SystemClock().now(), args.speed)
    sim = Simulator.random(
        agents=args.agents,
        groups=args.groups,
        queues=args.queues,
        seed=args.seed,
        timezone=args.timezone,
        clock=clock,
        faults=faults,
        profile=profile,
    )
    what = (
        f"random mode: {args.agents} agents in {args.groups} groups, {args.queues} visual queues"
        f" (seed {args.seed}, {args.timezone}, speed {args.speed:g}x)"
    )
    return sim, what


def banner(sim: Simulator, description: str, root: str) -> str:
    """What `simulate` prints once it listens at `root`: the mode, profile, URLs, credentials."""
    urls = base_urls(root)
    lines = [
        f"Puzzel simulator, {description}",
        f"  profile:    {sim.profile} ({PROFILE_SUMMARIES[sim.profile]})",
        f"  api base:   {urls['api']}",
        f"  auth base:  {urls['auth']}   (POST /api/Authenticate/LogIn)",
        f"  id base:    {urls['id'] or root}   (POST /id/connect/token)",
        "credentials:",
        *("  " + line for line in sim.credentials.describe().splitlines()),
        "serving until Ctrl-C",
    ]
    return "\n".join(lines)


async def serve(sim: Simulator, host: str, port: int, description: str) -> int:
    runner = web.AppRunner(create_app(sim), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"puzzel-monitor simulate: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    bound_port = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound_port = int(address[1])
            break
    root = f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}"
    print(banner(sim, description, root), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    print("simulator stopped", flush=True)
    return EXIT_OK


def publish_schedules(args: argparse.Namespace) -> int:
    """`simulate --schedules-out FILE`: the schedules the same arguments' centre follows."""
    problem = None
    if args.scenario:
        problem = "--schedules-out needs random mode (no --scenario)"
    elif not 1 <= args.schedule_days <= 60:
        problem = f"--schedule-days must be 1..60, got {args.schedule_days}"
    if problem:
        print(f"puzzel-monitor simulate: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    sim, _ = build_simulator(args)
    assert isinstance(sim.centre, RandomCentre)
    today = SystemClock().now().astimezone(sim.timezone).date()
    out = Path(args.schedules_out)
    try:
        count = write_schedules(sim.centre, out, today, args.schedule_days)
    except OSError as exc:
        print(f"puzzel-monitor simulate: cannot write {out}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    print(f"{out}: {count} segment(s), {args.schedule_days} day(s) from {today}", flush=True)
    return EXIT_OK


def _scenario_options_problem(args: argparse.Namespace) -> str | None:
    wall_clock = getattr(args, "start_now", False)
    if (wall_clock or getattr(args, "schedules_redis", None)) and not args.scenario:
        return "--start-now and --schedules-redis play a --scenario"
    if wall_clock and args.speed != 1:
        # `run` reads schedules against the wall clock: a faster scenario would drift from it
        return f"--start-now plays in real time: leave --speed at 1, got {args.speed:g}"
    return None


async def _load_schedules(sim: Simulator, url: str) -> int:
    assert isinstance(sim.centre, ScriptedCentre)
    client = redis_client(RedisConfig(), url=url, retry=False)
    try:
        result = await load_scenario_schedules(sim.centre.scenario, client)
    except (aioredis.RedisError, OSError) as exc:
        print(f"puzzel-monitor simulate: cannot load schedules into {url}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    finally:
        await client.aclose()
    print(
        f"schedules of tenant {sim.customer_key} loaded into {url} "
        f"(schedule version {result.version})",
        flush=True,
    )
    return EXIT_OK


def simulate_command(args: argparse.Namespace) -> int:
    if getattr(args, "schedules_out", None):
        try:
            return publish_schedules(args)
        except ValueError as exc:
            print(f"puzzel-monitor simulate: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    problem = _scenario_options_problem(args)
    if problem:
        print(f"puzzel-monitor simulate: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        sim, description = build_simulator(args)
    except ScenarioError as exc:
        print(f"puzzel-monitor simulate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as exc:
        print(f"puzzel-monitor simulate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    url = getattr(args, "schedules_redis", None)
    if url:
        code = asyncio.run(_load_schedules(sim, url))
        if code != EXIT_OK:
            return code
    return asyncio.run(serve(sim, args.host, args.port, description))
