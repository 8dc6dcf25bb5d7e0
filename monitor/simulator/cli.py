"""`puzzel-monitor simulate`: serve a simulated Puzzel tenant until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import timedelta

from aiohttp import web

from monitor.core.clock import SystemClock
from monitor.core.exits import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME
from monitor.simulator.app import base_urls, create_app
from monitor.simulator.clocks import ShiftedClock
from monitor.simulator.faults import Faults
from monitor.simulator.profiles import DEFAULT_PROFILE, PROFILE_SUMMARIES
from monitor.simulator.scenario import ScenarioError, load_scenario
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


def simulate_command(args: argparse.Namespace) -> int:
    try:
        sim, description = build_simulator(args)
    except ScenarioError as exc:
        print(f"puzzel-monitor simulate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as exc:
        print(f"puzzel-monitor simulate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(serve(sim, args.host, args.port, description))
