"""3. Detection latency in real time: from the moment a rule's condition has held for its
`after` in the simulator to the alert reaching a webhook receiver, for the monitor's own route
and, side by side on the same incidents, for the Prometheus route (real prometheus scraping the
exporter with an equivalent alerting rule, real Alertmanager forwarding to the same kind of
receiver).

Incidents: a scripted scenario (served by the simulator over loopback HTTP, on the system clock)
in which each of N agents goes into `wrap_up` at a staggered time and stays there longer than
`long_wrap_up`'s `after`. The ideal firing time of incident i is `T_i + after`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import SecretStr

from bench.common import (
    STATE_CADENCE,
    BenchResult,
    SimServer,
    median,
    percentile,
    tenant_config,
)
from monitor.alerts.config import AlertingConfig, WebhookSinkConfig
from monitor.alerts.service import AlertingService
from monitor.app.config import TenantConfig
from monitor.app.service import tenant_pollers
from monitor.app.testing import free_port
from monitor.app.wiring import tenant_pipeline
from monitor.core.clock import SystemClock
from monitor.http.metrics import Exporter, build_http_app
from monitor.ingest.cadence import Scheduler
from monitor.ingest.pollers import LatestSnapshots, TenantPollers
from monitor.pipeline.cycle import PipelineSet, StaticSchedules, TenantPipeline
from monitor.rules.loader import ruleset_from_mapping
from monitor.simulator.scenario import parse_scenario
from monitor.simulator.simulator import Simulator

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
FIRST_AGENT = 5001


@dataclass
class Receiver:
    """An in-process webhook receiver on loopback: the first arrival time of each agent's
    firing alert, per route."""

    arrivals: dict[str, dict[str, float]] = field(
        default_factory=lambda: {"monitor": {}, "prometheus": {}, "prometheus_for": {}}
    )
    runner: web.AppRunner | None = None
    port: int = 0

    def _handler(self, route: str, label: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            now = time.time()
            payload = await request.json()
            for alert in payload.get("alerts", []):
                if alert.get("status") != "firing":
                    continue
                labels = alert.get("labels", {})
                agent = str(labels.get(label, ""))
                key = "prometheus_for" if labels.get("alertname") == "LongWrapUpFor" else route
                if agent:
                    self.arrivals[key].setdefault(agent, now)
            return web.Response(text="ok")

        return handle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/monitor", self._handler("monitor", "agent"))
        app.router.add_post("/am", self._handler("prometheus", "agent_id"))
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def scenario_text(
    start: datetime, *, incidents: int, spacing: float, lead: float, after: float, hold: float
) -> tuple[str, dict[str, datetime]]:
    """The scenario YAML, and the ideal firing time of each agent's incident."""

    def ts(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%S")

    ideal: dict[str, datetime] = {}
    agents = []
    for i in range(incidents):
        aid = str(FIRST_AGENT + i)
        enter = start + timedelta(seconds=math.floor(lead + i * spacing))
        leave = enter + timedelta(seconds=after + hold)
        ideal[aid] = enter + timedelta(seconds=after)
        agents.append(
            f"  - id: {aid}\n    name: Agent {i}\n    group: Bench\n"
            f"    states:\n"
            f'      - ["{ts(start)}", available]\n'
            f'      - ["{ts(enter)}", wrap_up]\n'
            f'      - ["{ts(leave)}", available]\n'
        )
    end = start + timedelta(seconds=lead + incidents * spacing + after + hold + 120)
    text = (
        "name: detection latency benchmark\n"
        "tenant:\n  customer_key: '12345'\n  timezone: UTC\n"
        f'start: "{ts(start)}"\nend: "{ts(end)}"\n'
        f"rules:\n  long_wrap_up: {{after: {after:g}s}}\n"
        "agents:\n" + "".join(agents)
    )
    return text, ideal


class Proc:
    """A real binary on loopback, with its own temporary directory; stopped by its own pid."""

    def __init__(self, args: list[str], workdir: Path) -> None:
        self.args = args
        self.log = (workdir / f"{Path(args[0]).name}.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


async def wait_ready(
    session: aiohttp.ClientSession, url: str, what: str, within: float = 30.0
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready at {url}")


def prometheus_missing() -> str | None:
    missing = [b for b in (PROMETHEUS, ALERTMANAGER) if shutil.which(b) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (`make bench` installs them as root)"
    return None


def start_prometheus_route(
    workdir: Path, exporter_port: int, receiver: Receiver, after: float, group_wait: str
) -> tuple[list[Proc], int, int]:
    am_port, prom_port = free_port(), free_port()
    (workdir / "alertmanager.yml").write_text(
        "route:\n"
        "  receiver: bench\n"
        "  group_by: ['...']\n"
        f"  group_wait: {group_wait}\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: bench\n"
        "    webhook_configs:\n"
        f"      - url: {receiver.url('/am')}\n"
        "        send_resolved: false\n"
    )
    (workdir / "rules.yml").write_text(
        "groups:\n"
        "  - name: bench\n"
        "    rules:\n"
        "      - alert: LongWrapUp\n"
        "        expr: >-\n"
        '          time() - puzzelmon_agent_state_since_timestamp_seconds{state="wrap_up"}\n'
        f"          >= {after:g}\n"
        "        labels:\n"
        "          severity: warning\n"
        "      - alert: LongWrapUpFor\n"
        "        expr: puzzelmon_agent_state_code == 5\n"
        f"        for: {after:g}s\n"
        "        labels:\n"
        "          severity: warning\n"
    )
    (workdir / "prometheus.yml").write_text(
        "global:\n"
        f"  scrape_interval: {STATE_CADENCE:g}s\n"
        f"  evaluation_interval: {STATE_CADENCE:g}s\n"
        "rule_files: [rules.yml]\n"
        "alerting:\n"
        "  alertmanagers:\n"
        f"    - static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]\n"
        "scrape_configs:\n"
        "  - job_name: puzzel-monitor\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
    )
    (workdir / "am-data").mkdir()
    (workdir / "prom-data").mkdir()
    am = Proc(
        [
            shutil.which(ALERTMANAGER) or ALERTMANAGER,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        workdir,
    )
    prom = Proc(
        [
            shutil.which(PROMETHEUS) or PROMETHEUS,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        workdir,
    )
    return [am, prom], am_port, prom_port


def _webhook_alerting(
    url: str, redis: aioredis.Redis, clock: SystemClock, session: aiohttp.ClientSession
) -> AlertingService:
    """Alert delivery to one webhook, with no grouping delay."""
    return AlertingService(
        AlertingConfig(
            sinks={"bench": WebhookSinkConfig(type="webhook", url=SecretStr(url))},
            group_wait=timedelta(0),
        ),
        redis,
        clock=clock,
        session=session,
        key_prefix="pzm-latency",
    )


async def measure(
    *,
    redis_url: str,
    incidents: int,
    spacing: float,
    after: float = 8.0,
    hold: float = 12.0,
    with_prometheus: bool = True,
    group_wait: str = "0s",
    lead: float | None = None,
) -> dict[str, Any]:
    clock = SystemClock()
    receiver = Receiver()
    await receiver.start()
    workdir = Path(tempfile.mkdtemp(prefix="pzm-bench-latency-"))
    procs: list[Proc] = []
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushdb()
    exporter_runner: web.AppRunner | None = None
    skipped = None if with_prometheus else "not asked for"
    if with_prometheus and (why := prometheus_missing()):
        skipped = why
    try:
        async with aiohttp.ClientSession() as session:
            exporter_port = free_port()
            if skipped is None:
                procs, am_port, prom_port = start_prometheus_route(
                    workdir, exporter_port, receiver, after, group_wait
                )
                await wait_ready(session, f"http://127.0.0.1:{am_port}/-/ready", "alertmanager")
                await wait_ready(session, f"http://127.0.0.1:{prom_port}/-/ready", "prometheus")
            if lead is None:
                lead = 3 * STATE_CADENCE + 2  # a few polls and scrapes before the first incident
            start = datetime.fromtimestamp(math.ceil(time.time()) + 1, UTC)
            text, ideal = scenario_text(
                start, incidents=incidents, spacing=spacing, lead=lead, after=after, hold=hold
            )
            scenario = parse_scenario(text, "<latency benchmark>")
            sim = Simulator.from_scenario(scenario, clock=clock)
            ruleset = ruleset_from_mapping(
                scenario.rules, scenario.activities, only_listed=True, source="<latency>"
            )
            async with SimServer(sim) as server:
                cfg = tenant_config(sim, server.base, queues=None, tickers=None, virtual=False)
                alerting = _webhook_alerting(receiver.url("/monitor"), redis, clock, session)
                pipeline = tenant_pipeline(
                    cfg.customer_key,
                    redis=redis,
                    ruleset=ruleset,
                    clock=clock,
                    publisher=alerting,
                    key_prefix="pzm-latency",
                    schedules=StaticSchedules({}),
                )
                await pipeline.start()
                pollers, exporter_runner = await _serve_metrics(
                    cfg, pipeline, session, clock, exporter_port
                )
                routes = ["monitor"] + (["prometheus", "prometheus_for"] if skipped is None else [])
                await alerting.start()
                await _poll_until_arrived(
                    pollers, clock, receiver, routes=routes, incidents=incidents,
                    last=max(ideal.values()),
                )  # fmt: skip
                await alerting.stop(grace=2.0)
    finally:
        if exporter_runner is not None:
            await exporter_runner.cleanup()
        await receiver.stop()
        for p in procs:
            p.stop()
        await redis.aclose()
        shutil.rmtree(workdir, ignore_errors=True)
    out: dict[str, Any] = {
        "incidents": incidents,
        "after_seconds": after,
        "cadence_seconds": STATE_CADENCE,
        "prometheus_skipped": skipped,
    }
    for route in ("monitor", "prometheus", "prometheus_for"):
        out[route] = _route_latencies(receiver.arrivals[route], ideal, incidents)
    return out


async def _serve_metrics(
    cfg: TenantConfig,
    pipeline: TenantPipeline,
    session: aiohttp.ClientSession,
    clock: SystemClock,
    port: int,
) -> tuple[TenantPollers, web.AppRunner]:
    """The tenant's pollers feeding `pipeline`, and /metrics served on `port` for Prometheus."""
    store = LatestSnapshots()
    client, pollers = tenant_pollers(cfg, session=session, clock=clock, store=store, sink=pipeline)
    exporter = Exporter(
        store,
        tenants=lambda: [pollers],
        clients=lambda: {cfg.customer_key: client},
        engine=PipelineSet([pipeline]),
    )
    runner = web.AppRunner(build_http_app(exporter), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return pollers, runner


async def _poll_until_arrived(
    pollers: TenantPollers,
    clock: SystemClock,
    receiver: Receiver,
    *,
    routes: list[str],
    incidents: int,
    last: datetime,
) -> None:
    """Run the pollers on their cadences until the incidents have arrived; then stop them."""
    scheduler = Scheduler(clock)
    pollers.register(scheduler)
    loop_task = asyncio.create_task(scheduler.run_forever())
    await _wait_arrivals(receiver, routes, incidents, last)
    scheduler.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await loop_task
    await scheduler.drain(2.0)


async def _wait_arrivals(
    receiver: Receiver, routes: list[str], incidents: int, last: datetime
) -> None:
    """Until every route has brought every incident, or well past the last ideal time."""
    deadline = last.timestamp() + 4 * STATE_CADENCE + 10
    while time.time() < deadline:
        if all(len(receiver.arrivals[r]) >= incidents for r in routes):
            return
        await asyncio.sleep(0.5)


def _route_latencies(
    got: dict[str, float], ideal: dict[str, datetime], incidents: int
) -> dict[str, Any]:
    """Arrival minus ideal time of every incident that arrived by one route."""
    lat = [got[a] - ideal[a].timestamp() for a in ideal if a in got]
    return {
        "received": len(lat),
        "missing": incidents - len(lat),
        "median": median(lat) if lat else None,
        "p99": percentile(lat, 99) if lat else None,
        "min": min(lat) if lat else None,
        "max": max(lat) if lat else None,
        "latencies": sorted(round(x, 3) for x in lat),
    }


async def run(*, redis_url: str, incidents: int, spacing: float) -> BenchResult:
    result = BenchResult("latency", "Detection latency (real time)")
    m = await measure(redis_url=redis_url, incidents=incidents, spacing=spacing)
    result.data = m
    goal = STATE_CADENCE + 0.5
    mon = m["monitor"]
    if mon["received"]:
        result.add(
            f"monitor route p99 ({mon['received']}/{incidents} incidents)",
            round(mon["p99"], 2),
            "s",
            goal=f"< {goal:g} s (cadence + 0.5 s)",
            met=mon["p99"] < goal and mon["missing"] == 0,
        )
        result.add("  monitor route median", round(mon["median"], 2), "s")
        result.add("  monitor route max", round(mon["max"], 2), "s")
    else:
        result.add("monitor route: no alert arrived", None, "s", met=False)
    prom = m["prometheus"]
    if m["prometheus_skipped"]:
        result.add("Prometheus route", None, "s", note=f"skipped: {m['prometheus_skipped']}")
    elif prom["received"]:
        ratio_p99 = prom["p99"] / mon["p99"] if mon["received"] and mon["p99"] else None
        result.add(
            f"Prometheus+Alertmanager route p99 ({prom['received']}/{incidents})",
            round(prom["p99"], 2),
            "s",
            ratio=round(ratio_p99, 2) if ratio_p99 else None,
            ratio_of="monitor p99",
        )
        ratio_med = prom["median"] / mon["median"] if mon["received"] and mon["median"] else None
        result.add(
            "  Prometheus+Alertmanager route median",
            round(prom["median"], 2),
            "s",
            ratio=round(ratio_med, 2) if ratio_med else None,
            ratio_of="monitor median",
        )
    else:
        result.add("Prometheus route: no alert arrived", None, "s")
    pf = m["prometheus_for"]
    if not m["prometheus_skipped"] and pf["received"]:
        ratio_p99 = pf["p99"] / mon["p99"] if mon["received"] and mon["p99"] else None
        result.add(
            f"Prometheus `for:` rule + Alertmanager p99 ({pf['received']}/{incidents})",
            round(pf["p99"], 2),
            "s",
            ratio=round(ratio_p99, 2) if ratio_p99 else None,
            ratio_of="monitor p99",
        )
        result.add("  Prometheus `for:` rule median", round(pf["median"], 2), "s")
    result.notes.append(
        f"{incidents} incidents (long_wrap_up, after {m['after_seconds']:g} s) staggered "
        f"{spacing:g} s apart; state cadence 5 s, scheduler jitter 0, alert group_wait 0 s "
        "(the shipped default is 2 s, which adds up to 2 s); Prometheus scrape and evaluation "
        "every 5 s, rule `time() - puzzelmon_agent_state_since_timestamp_seconds"
        '{state="wrap_up"} >= after` (uses the exact entry time the monitor exports) and the '
        "naive `puzzelmon_agent_state_code == 5` with `for: after`; Alertmanager group_wait 0s, "
        "group_by ['...']."
    )
    return result
