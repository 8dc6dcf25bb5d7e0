"""`puzzel-monitor demo`: the simulator, the whole monitor and its metrics, with no setup.

The simulator plays a generated scripted day around the moment the demo starts
(`monitor.demo.scenario`) over real HTTP on loopback; the real monitor
(`monitor.app.wiring.Monitor`) polls it, evaluates the demo rules and delivers alerts to the
console sink; the exporter serves /metrics on `--port`. The store is an embedded in-memory one
unless `--redis-url` names a real Redis (the demo then owns the keys under `pzm-demo:` and
clears them at start).

On a terminal a live view redraws once a second (`monitor.demo.view`); otherwise a short banner
is printed, then one line per alert notification as the console sink writes it.

`--speed N` runs simulated time N times faster than real time (simulator and monitor share one
shifted clock; timestamps in the metrics are then simulated time too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import redis.asyncio as aioredis
import structlog
from aiohttp import web

from monitor.app.config import (
    CadencesConfig,
    Config,
    ExporterConfig,
    RateLimitConfig,
    RedisConfig,
    TenantConfig,
)
from monitor.app.logging import configure_logging
from monitor.app.redis_client import redis_client
from monitor.app.service import ServiceError, StopSignals
from monitor.app.wiring import Monitor
from monitor.core.clock import Clock, SystemClock
from monitor.core.exits import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_RUNTIME
from monitor.demo.scenario import (
    MAX_AGENTS,
    MIN_AGENTS,
    DemoCentre,
    build_demo,
    demo_ruleset,
    rules_note,
)
from monitor.demo.view import (
    AlertFeed,
    LiveView,
    ViewData,
    exception_rows,
    scrape_config,
    team_counts,
)
from monitor.engine.model import AgentEvaluation, AlertTransition, RuleSet
from monitor.rules.loader import RulesError, default_ruleset, load_rules
from monitor.schedules.store import ScheduleStore
from monitor.simulator.app import create_app, tenant_settings
from monitor.simulator.clocks import ShiftedClock
from monitor.simulator.simulator import Simulator

log = structlog.get_logger(__name__)

KEY_PREFIX = "pzm-demo"
METRICS_HOST = "127.0.0.1"
STOP_GRACE = 2.0


@dataclass(frozen=True)
class DemoOptions:
    port: int = 8912
    agents: int = 36
    speed: float = 1.0
    duration: float = 0.0
    redis_url: str | None = None
    rules_dir: Path = Path("rules")


def demo_rules(rules_dir: Path) -> RuleSet:
    """The operator's rules (rules/ when run from a checkout, else the built-in defaults, which
    are the same values) with the demo's short `after`s."""
    base = load_rules(rules_dir) if rules_dir.is_dir() else default_ruleset()
    return demo_ruleset(base)


def demo_config(sim_root: str, sim: Simulator, options: DemoOptions) -> Config:
    """The monitor's configuration: one tenant, the simulator's URLs and credentials."""
    return Config(
        tenants=[
            TenantConfig.model_validate(
                {
                    **tenant_settings(sim, sim_root),
                    "name": "Demo contact centre",
                    "cadences": CadencesConfig(
                        user_states=5.0,
                        queues=5.0,
                        agent_stats=30.0,
                        queue_ticker=30.0,
                        access_points=30.0,
                        jitter=0.2,
                    ),
                    # exact state-entry times for every agent that changed, from the first poll
                    "user_state_budget": max(10, options.agents),
                    "rate_limit": RateLimitConfig(requests_per_second=500.0, burst=1000),
                }
            )
        ],
        redis=RedisConfig(url=options.redis_url or "redis://127.0.0.1:6379/0"),
        exporter=ExporterConfig(host=METRICS_HOST, port=options.port),
        rules_path=str(options.rules_dir),
    )


async def _open_store(redis_url: str | None) -> aioredis.Redis:
    if redis_url is None:
        import fakeredis  # noqa: PLC0415 - only the embedded store needs it

        store: aioredis.Redis = fakeredis.FakeAsyncRedis()
        return store
    client = redis_client(RedisConfig(), url=redis_url, retry=False)
    try:
        await client.ping()
        # a previous demo's engine state and outbox would replay old alerts
        async for key in client.scan_iter(match=f"{KEY_PREFIX}:*", count=500):
            await client.delete(key)
    except (aioredis.RedisError, OSError) as e:
        await client.aclose()
        raise ServiceError(f"cannot reach Redis at {redis_url}: {e}") from None
    return client


class Demo:
    """The running demo: simulator server, store, monitor. `start()` then `stop()`."""

    def __init__(self, options: DemoOptions, *, console: TextIO, clock: Clock) -> None:
        self.options = options
        self.clock = clock
        self.console = console
        self.started_at = clock.now()
        self.centre: DemoCentre = build_demo(self.started_at, options.agents)
        self.ruleset = demo_rules(options.rules_dir)
        self.sim = Simulator.from_scenario(self.centre.scenario, clock=clock)
        self._runner: web.AppRunner | None = None
        self.redis: aioredis.Redis | None = None
        self.monitor: Monitor | None = None

    @property
    def port(self) -> int:
        """The metrics port (the one bound, when `--port 0` asked for any free one)."""
        if self.monitor is not None and self.monitor.service.bound_port:
            return self.monitor.service.bound_port
        return self.options.port

    @property
    def metrics_url(self) -> str:
        return f"http://{METRICS_HOST}:{self.port}/metrics"

    async def start(self) -> None:
        """Serve the simulator, fill the store's schedules, start the monitor. Raises
        ServiceError (Redis unreachable, metrics port taken); call `stop()` either way."""
        self._runner = web.AppRunner(
            create_app(self.sim, clock=self.clock), handle_signals=False, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in self._runner.addresses if isinstance(a, tuple))
        root = f"http://127.0.0.1:{port}"
        self.redis = await _open_store(self.options.redis_url)
        scenario = self.centre.scenario
        await ScheduleStore(self.redis, key_prefix=KEY_PREFIX).replace(
            scenario.customer_key,
            scenario.timezone,
            [s for a in scenario.agents for s in a.segments],
            agents={a.id for a in scenario.agents},
        )
        self.monitor = Monitor(
            demo_config(root, self.sim, self.options),
            clock=self.clock,
            redis=self.redis,
            ruleset=self.ruleset,
            console_stream=self.console,
            host=METRICS_HOST,
            port=self.options.port,
            key_prefix=KEY_PREFIX,
        )
        await self.monitor.start()

    async def stop(self) -> None:
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                await self.monitor.stop(grace=STOP_GRACE)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
            self.redis = None


def banner(demo: Demo) -> list[str]:
    """What a non-terminal run prints before the alert lines (no alert words in it)."""
    sc = demo.centre.scenario
    teams = ", ".join(dict.fromkeys(a.group for a in sc.agents))
    speed = f", {demo.options.speed:g}x speed" if demo.options.speed != 1 else ""
    return [
        f"puzzel-monitor demo: simulated tenant {sc.customer_key}, {len(sc.agents)} agents in "
        f"{teams}{speed}",
        f"metrics: {demo.metrics_url}",
        "point Prometheus at it with:",
        *("  " + line for line in scrape_config(METRICS_HOST, demo.port)),
        rules_note(),
        "alerts, one line each as the console sink delivers them:",
    ]


async def run_demo(options: DemoOptions, *, out: TextIO, live: bool) -> int:
    stop = StopSignals(asyncio.get_running_loop())
    clock: Clock = SystemClock()
    if options.speed != 1:
        clock = ShiftedClock(clock.now(), options.speed)
    feed = AlertFeed(clock) if live else None
    demo = Demo(options, console=feed if feed is not None else out, clock=clock)
    view: LiveView | None = None
    try:
        try:
            await demo.start()
        except ServiceError as e:
            hint = " (choose another with --port)" if "listen" in str(e) else ""
            print(f"puzzel-monitor demo: {e}{hint}", file=sys.stderr)
            return EXIT_RUNTIME
        if feed is not None:
            assert demo.monitor is not None
            view = LiveView(
                lambda: view_data(demo, feed), feed, out, tz=demo.centre.scenario.timezone
            )
            view.start()
        else:
            out.write("\n".join(banner(demo)) + "\n")
            out.flush()
        assert demo.monitor is not None
        waits = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(demo.monitor.wait_failed()),
        ]
        timeout = options.duration if options.duration > 0 else None
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        failed = demo.monitor.failed
        if failed is not None:
            print(f"puzzel-monitor demo: the monitor failed: {failed}", file=sys.stderr)
            return EXIT_RUNTIME
        return stop.exit_code()
    finally:
        if view is not None:
            await view.stop()
        await demo.stop()
        stop.close()


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(
        port=args.port,
        agents=args.agents,
        speed=args.speed,
        duration=args.duration,
        redis_url=args.redis_url,
    )


def demo_command(args: argparse.Namespace) -> int:
    """`puzzel-monitor demo [--redis-url URL] [--port 8912] [--agents 36] [--speed 1]
    [--duration SECONDS]`."""
    options = options_from_args(args)
    problem = _check_options(options)
    if problem:
        print(f"puzzel-monitor demo: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    live = sys.stdout.isatty()
    level = "debug" if getattr(args, "log_level", "info") == "debug" else "warning"
    # on a terminal the view owns the screen: only errors may interrupt it
    configure_logging("error" if live and level != "debug" else level, "console")
    try:
        return asyncio.run(run_demo(options, out=sys.stdout, live=live))
    except RulesError as e:
        print(f"puzzel-monitor demo: rules error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return EXIT_INTERRUPTED
    except Exception as e:  # last resort: one line, not a traceback
        print(f"puzzel-monitor demo: fatal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_RUNTIME


def _check_options(options: DemoOptions) -> str | None:
    if not 0 <= options.port <= 65535:
        return f"--port must be 0..65535, got {options.port}"
    if options.speed <= 0:
        return f"--speed must be positive, got {options.speed:g}"
    if options.duration < 0:
        return f"--duration must be 0 (run until Ctrl-C) or positive, got {options.duration:g}"
    if not MIN_AGENTS <= options.agents <= MAX_AGENTS:
        return f"--agents must be between {MIN_AGENTS} and {MAX_AGENTS}, got {options.agents}"
    return None


def view_data(demo: Demo, feed: AlertFeed) -> ViewData:
    """What the view shows now, read from the running demo."""
    tenant = demo.centre.scenario.customer_key
    tz = demo.centre.scenario.timezone
    evaluations: Sequence[AgentEvaluation] = ()
    alerts: Sequence[AlertTransition] = ()
    if demo.monitor is not None:
        pipeline = demo.monitor.pipelines.by_tenant[tenant]
        evaluations = pipeline.evaluations
        alerts = pipeline.open_alerts(tenant)
    now = demo.clock.now().astimezone(tz)
    return ViewData(
        now=now,
        started=demo.started_at,
        tenant=tenant,
        agents=len(demo.centre.scenario.agents),
        metrics_url=demo.metrics_url,
        scrape=scrape_config(METRICS_HOST, demo.port),
        rules_note=rules_note(),
        teams=team_counts(evaluations),
        exceptions=exception_rows(alerts, evaluations, demo.centre.names, demo.centre.queue_names),
        recent=[(t.astimezone(tz), s) for t, s in feed.lines],
        timezone_name=str(tz),
    )
