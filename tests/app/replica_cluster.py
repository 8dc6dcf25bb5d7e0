"""Three `python -m monitor run` processes sharing three simulated tenants on one redis-server,
notifying a loopback webhook receiver: the set-up of tests/app/test_replicas_processes.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.clock import SystemClock
from monitor.simulator.app import create_app
from monitor.simulator.scenario import Scenario, parse_scenario
from monitor.simulator.simulator import Simulator
from tests.alerts.helpers import Receiver
from tests.redis_server import free_port
from tests.simserver import tenant_dict

TZ = ZoneInfo("Europe/Oslo")
CADENCE = 3.0  # agent-state cadence, seconds: lease TTL 6 s, renewed every 1.5 s
AFTER = 3  # break_overrun's `after`, seconds
AGENT = "1001"
ROOT = Path(__file__).resolve().parents[2]


def local(t: datetime) -> str:
    return t.astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S")


def scenario(tenant: str, now: datetime, break_end: datetime, back: datetime) -> Scenario:
    """One agent in a pause since 40 s ago, scheduled on a break until `break_end`, available
    again at `back`: break_overrun fires at `break_end` + AFTER and resolves at `back`."""
    start = now - timedelta(seconds=40)
    text = f"""
name: Break overrun of {tenant}
tenant: {{customer_key: "{tenant}", timezone: {TZ.key}}}
start: {local(now - timedelta(minutes=2))}
end: {local(now + timedelta(minutes=10))}
rules:
  break_overrun: {{after: {AFTER}s}}
agents:
  - id: {AGENT}
    name: Agent of {tenant}
    group: Support
    schedule:
      - [{local(start)}, {local(break_end)}, break]
      - [{local(break_end)}, {local(now + timedelta(minutes=10))}, phone]
    states:
      - [{local(start - timedelta(minutes=1))}, available]
      - [{local(start)}, pause, Break]
      - [{local(back)}, available]
"""
    return parse_scenario(text, f"replicas-{tenant}")


@dataclass
class SimTenant:
    scenario: Scenario
    sim: Simulator
    root: str
    polls: list[float] = field(default_factory=list)  # monotonic times of API requests

    @property
    def key(self) -> str:
        return self.scenario.customer_key

    def config(self) -> dict[str, Any]:
        off = "off"
        cadences = {"user_states": CADENCE, "queues": off, "agent_stats": off}
        cadences |= {"queue_ticker": off, "access_points": off, "jitter": off}
        return tenant_dict(self.sim, self.root, id=self.key, timezone=TZ.key, cadences=cadences)

    def polled_after(self, t: float) -> float | None:
        return next((p for p in self.polls if p > t), None)


async def serve_simulator(scenario_: Scenario, runners: list[web.AppRunner]) -> SimTenant:
    clock = SystemClock()
    sim = Simulator.from_scenario(scenario_, clock=clock)
    app = create_app(sim, clock=clock)
    tenant = SimTenant(scenario_, sim, "")

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        if "stateinformation" in request.path:  # an agent-state poll
            tenant.polls.append(time.monotonic())

    app.on_response_prepare.append(record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    runners.append(runner)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    tenant.root = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return tenant


@dataclass
class Replica:
    name: str
    port: int
    proc: asyncio.subprocess.Process
    log: Path

    async def readyz(self) -> dict[str, Any]:
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.get(
                    f"http://127.0.0.1:{self.port}/readyz", timeout=aiohttp.ClientTimeout(2)
                ) as r,
            ):
                data: dict[str, Any] = await r.json()
                return data
        except (aiohttp.ClientError, TimeoutError):
            return {}

    async def metrics(self) -> str:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{self.port}/metrics") as r,
        ):
            return await r.text()

    async def sample(self, name: str, **labels: str) -> float | None:
        """The value of the first sample of `name` whose labels include `labels`."""
        for family in text_string_to_metric_families(await self.metrics()):
            for s in family.samples:
                if s.name == name and labels.items() <= s.labels.items():
                    return float(s.value)
        return None

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.proc.pid, sig)


class Cluster:
    """The simulators, the receiver, the configuration and the `run` processes."""

    def __init__(self, tmp: Path, redis_url: str) -> None:
        self.tmp = tmp
        self.redis_url = redis_url
        self.receiver = Receiver()
        self.tenants: dict[str, SimTenant] = {}
        self.replicas: dict[str, Replica] = {}
        self._runners: list[web.AppRunner] = []
        self.config_path = tmp / "config.yaml"

    async def start_receiver(self) -> str:
        runner = web.AppRunner(self.receiver.app(), access_log=None)
        await runner.setup()
        self._runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}/hook"

    async def add_tenant(self, scenario_: Scenario) -> SimTenant:
        tenant = await serve_simulator(scenario_, self._runners)
        self.tenants[tenant.key] = tenant
        return tenant

    def write_config(self, hook_url: str) -> None:
        rules = self.tmp / "rules"
        rules.mkdir(exist_ok=True)
        (rules / "rules.yaml").write_text(f"rules:\n  break_overrun: {{after: {AFTER}s}}\n")
        config = {
            "tenants": [t.config() for t in self.tenants.values()],
            "redis": {"url": self.redis_url},
            "replicas": {"enabled": True},
            "exporter": {"host": "127.0.0.1", "port": 0},
            "rules_path": str(rules),
            "alerting": {
                "sinks": {"hook": {"type": "webhook", "url": hook_url, "timeout": "5s"}},
                "group_wait": "0s",
            },
            "log": {"format": "json"},
        }
        self.config_path.write_text(yaml.safe_dump(config))

    async def start_replica(self, name: str) -> Replica:
        """`python -m monitor run` with the shared configuration; only its name and port come
        from the environment."""
        port = free_port()
        env = {
            **os.environ,
            "PUZZEL_MONITOR_REPLICAS__ID": name,
            "PUZZEL_MONITOR_EXPORTER__PORT": str(port),
        }
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor",
                "run",
                "-c",
                str(self.config_path),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        replica = self.replicas[name] = Replica(name, port, proc, log)
        return replica

    async def owners(self) -> dict[str, list[str]]:
        """Replica -> the tenants its /readyz says it owns (dead or stopped ones: absent)."""
        out = {}
        for name, r in self.replicas.items():
            if r.proc.returncode is None:
                data = await r.readyz()
                if "owned_tenants" in data:
                    out[name] = list(data["owned_tenants"])
        return out

    def notifications(self) -> Counter[tuple[str, str]]:
        """(tenant, status) -> deliveries of our agent's break_overrun at the receiver."""
        seen: Counter[tuple[str, str]] = Counter()
        for payload in self.receiver.accepted:
            for item in payload["alerts"]:
                labels = item["labels"]
                if labels.get("rule") == "break_overrun" and labels.get("agent") == AGENT:
                    seen[labels["tenant"], item["status"]] += 1
        return seen

    def idempotency_keys(self) -> Iterator[str]:
        for payload in self.receiver.accepted:
            for item in payload["alerts"]:
                yield item["idempotencyKey"]

    async def close(self) -> None:
        for r in self.replicas.values():
            if r.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    r.signal(signal.SIGCONT)
                    r.proc.kill()
                await r.proc.wait()
        for runner in self._runners:
            await runner.cleanup()


async def wait_for(what: str, check: Any, limit: float, step: float = 0.2) -> Any:
    """Poll `check()` (sync or async) until truthy; fail naming `what` after `limit` s."""
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {limit} s waiting for {what}"
        await asyncio.sleep(step)
