"""The parts of the fault tests: a scripted simulator served over HTTP in real time, a private
redis-server the test may kill, a loopback webhook receiver recording every request, and the
assembled monitor between them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.config import Config
from monitor.app.wiring import Monitor
from monitor.core.clock import SystemClock
from monitor.rules.loader import ruleset_from_mapping
from monitor.simulator.app import base_urls, create_app, simulated_endpoints
from monitor.simulator.scenario import Scenario, parse_scenario
from monitor.simulator.simulator import Simulator
from tests.alerts.helpers import Receiver
from tests.redis_server import free_port

TZ = ZoneInfo("Europe/Oslo")
AFTER = 2  # break_overrun's `after`, seconds


@dataclass(frozen=True)
class Break:
    """An agent whose break ends at `ends` (s from now) and who is back at `back`."""

    agent: str
    ends: float
    back: float
    group: str = "Support"


def local(t: datetime) -> str:
    return t.astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S")


def scenario(now: datetime, breaks: list[Break]) -> Scenario:
    start = now - timedelta(seconds=40)
    lines = [
        "name: faults",
        f'tenant: {{customer_key: "12345", timezone: {TZ.key}}}',
        f"start: {local(now - timedelta(minutes=2))}",
        f"end: {local(now + timedelta(minutes=10))}",
        f"rules:\n  break_overrun: {{after: {AFTER}s}}",
        "agents:",
    ]
    for b in breaks:
        ends, back = now + timedelta(seconds=b.ends), now + timedelta(seconds=b.back)
        lines += [
            f"  - id: {b.agent}",
            f"    name: Agent {b.agent}",
            f"    group: {b.group}",
            "    schedule:",
            f"      - [{local(start)}, {local(ends)}, break]",
            f"      - [{local(ends)}, {local(now + timedelta(minutes=10))}, phone]",
            "    states:",
            f"      - [{local(start - timedelta(minutes=1))}, available]",
            f"      - [{local(start)}, pause, Break]",
            f"      - [{local(back)}, available]",
        ]
    return parse_scenario("\n".join(lines) + "\n", "faults")


@dataclass
class Rig:
    sim_runner: web.AppRunner
    hook_runner: web.AppRunner
    receiver: Receiver
    monitor: Monitor
    scenario: Scenario
    config: Config
    started: float = field(default_factory=time.monotonic)

    def new_monitor(self) -> Monitor:
        """Another monitor process-alike on the same simulator, receiver and Redis."""
        self.monitor = make_monitor(self.config, self.scenario)
        return self.monitor

    @property
    def port(self) -> int:
        assert self.monitor.service.bound_port is not None
        return self.monitor.service.bound_port

    def items(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """(headers, alert item) of every request the receiver got, in arrival order."""
        return [
            (headers, item)
            for _, body, headers in self.receiver.requests
            for item in orjson.loads(body)["alerts"]
        ]

    def delivered(self) -> Counter[tuple[str, str, str]]:
        """(alertname/agent, status, delivery kind) -> count, of accepted payloads."""
        return Counter(
            (a["labels"].get("agent", a["labels"]["alertname"]), a["status"], a["delivery"])
            for p in self.receiver.accepted
            for a in p["alerts"]
        )

    def count(self, who: str, status: str) -> int:
        return sum(n for (w, s, _), n in self.delivered().items() if w == who and s == status)

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.port}{path}") as resp,
        ):
            return resp.status, await resp.text()

    async def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        _, text = await self.get("/metrics")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == (labels or {}):
                    return float(sample.value)
        return None

    async def close(self) -> None:
        await self.monitor.stop(grace=1)
        await self.hook_runner.cleanup()
        await self.sim_runner.cleanup()


def config(
    sim: Simulator,
    root: str,
    hook: str,
    redis: str | dict[str, Any],
    *,
    group_wait: timedelta = timedelta(0),
    extra: dict[str, Any] | None = None,
    replicas: bool = False,
) -> Config:
    """`redis` is a URL or a whole `redis:` section (e.g. Sentinel); `replicas`: leases on (one
    replica of possibly several); `extra` adds or replaces top-level sections."""
    creds = sim.credentials
    urls = base_urls(root)
    off = "off"
    return Config.model_validate(
        {
            "tenants": [
                {
                    "id": creds.customer_key,
                    "timezone": TZ.key,
                    "credentials": {
                        "method": "puzzel_id",
                        "client_id": creds.client_id,
                        "client_secret": creds.client_secret.get_secret_value(),
                        "user_id": creds.user_id,
                    },
                    "api_base_url": urls["api"],
                    "auth_base_url": urls["auth"],
                    "id_base_url": urls["id"],
                    "endpoints": simulated_endpoints(sim),
                    # exact entry times for every agent of the first cycle (default budget 10)
                    "user_state_budget": 50,
                    "cadences": {
                        "user_states": 1.0,
                        "queues": off,
                        "agent_stats": off,
                        "queue_ticker": off,
                        "access_points": off,
                        "jitter": off,
                    },
                }
            ],
            "redis": redis if isinstance(redis, dict) else {"url": redis},
            "replicas": {"enabled": replicas},
            "exporter": {"host": "127.0.0.1", "port": 0},
            "alerting": {
                "sinks": {"ops": {"type": "webhook", "url": hook, "timeout": "3s"}},
                "group_wait": group_wait,
            },
        }
        | (extra or {})
    )


async def start_rig(
    breaks: list[Break],
    redis_url: str | dict[str, Any],
    *,
    receiver: Receiver | None = None,
    group_wait: timedelta = timedelta(0),
    start: bool = True,
    extra: dict[str, Any] | None = None,
    replicas: bool = False,
) -> Rig:
    """Simulator, receiver and monitor (schedules imported, redis checked every second); the
    monitor is started unless `start` is false."""
    sc = scenario(SystemClock().now().replace(microsecond=0), breaks)
    clock = SystemClock()
    sim = Simulator.from_scenario(sc, clock=clock)
    sim_runner = web.AppRunner(create_app(sim, clock=clock), access_log=None)
    await sim_runner.setup()
    await web.TCPSite(sim_runner, "127.0.0.1", 0).start()
    root = f"http://127.0.0.1:{sim_runner.addresses[0][1]}"
    receiver = receiver or Receiver()
    hook_runner = web.AppRunner(receiver.app(), access_log=None)
    await hook_runner.setup()
    hook_port = free_port()
    await web.TCPSite(hook_runner, "127.0.0.1", hook_port).start()
    hook = f"http://127.0.0.1:{hook_port}/hook"
    cfg = config(sim, root, hook, redis_url, group_wait=group_wait, extra=extra, replicas=replicas)
    monitor = make_monitor(cfg, sc)
    await import_schedules(monitor, sc)
    if start:
        await monitor.start()
    return Rig(sim_runner, hook_runner, receiver, monitor, sc, cfg)


def make_monitor(cfg: Config, sc: Scenario) -> Monitor:
    monitor = Monitor(
        cfg,
        clock=SystemClock(),
        ruleset=ruleset_from_mapping(sc.rules, sc.activities, only_listed=True),
        host="127.0.0.1",
        port=0,
        redis_check_interval=1.0,
    )
    # these tests read a counter right after the event that moves it: no render cache (which
    # would serve a body up to a second old)
    monitor.service.exporter.render_cache_seconds = 0.0
    return monitor


async def import_schedules(monitor: Monitor, sc: Scenario) -> None:
    await monitor.schedules.replace(
        sc.customer_key, sc.timezone, [s for a in sc.agents for s in a.segments]
    )


async def wait_for(what: str, cond: Callable[[], bool], limit: float = 30.0) -> float:
    """Wait until `cond()`; returns the seconds it took."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - t0
