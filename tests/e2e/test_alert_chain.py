"""End to end, in real time: the scripted simulator plays a break overrun, the assembled monitor
polls it over HTTP and fires `break_overrun`, a real Alertmanager (loopback) receives the alert
through our v2 sink and forwards it to a webhook receiver; the resolve follows when the agent
is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerts.model import fingerprint
from monitor.app.config import Config
from monitor.app.wiring import Monitor
from monitor.core.clock import SystemClock
from monitor.rules.loader import ruleset_from_mapping
from monitor.schedules.store import ScheduleStore
from monitor.simulator.app import base_urls, create_app, simulated_endpoints
from monitor.simulator.scenario import Scenario, parse_scenario
from monitor.simulator.simulator import Simulator
from tests.alerts.helpers import Receiver
from tests.redis_server import free_port

AM = Path("/usr/bin/prometheus-alertmanager")
TZ = ZoneInfo("Europe/Oslo")
AGENT = "1001"
SINK = "am"
CADENCE = 1.0  # seconds between agent-state polls
AFTER = 5  # break_overrun's `after`, seconds

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not AM.exists(),
        reason=f"{AM} is not installed (apt-get install prometheus-alertmanager)",
    ),
]


@dataclass(frozen=True)
class Script:
    """The instants the scenario is built around (UTC, whole seconds)."""

    now: datetime
    break_start: datetime
    break_end: datetime
    back: datetime  # the agent turns available

    @classmethod
    def around(cls, now: datetime) -> Script:
        now = now.replace(microsecond=0)
        return cls(
            now=now,
            break_start=now - timedelta(seconds=40),
            break_end=now + timedelta(seconds=5),
            back=now + timedelta(seconds=20),
        )

    @property
    def fires(self) -> datetime:
        """The ideal firing time: the pause outlasts the break at its end, then `after`."""
        return self.break_end + timedelta(seconds=AFTER)


def local(t: datetime) -> str:
    return t.astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S")


def scenario_text(s: Script) -> str:
    """A scenario (full local date-times, so a run near midnight still parses) for `s`."""
    return f"""
name: Break overrun in real time
tenant: {{customer_key: "12345", timezone: {TZ.key}}}
start: {local(s.now - timedelta(minutes=2))}
end: {local(s.now + timedelta(minutes=5))}
rules:
  break_overrun: {{after: {AFTER}s}}
agents:
  - id: {AGENT}
    name: Ada Nilsen
    group: Support
    schedule:
      - [{local(s.break_start)}, {local(s.break_end)}, break]
      - [{local(s.break_end)}, {local(s.now + timedelta(minutes=5))}, phone]
    states:
      - [{local(s.break_start - timedelta(minutes=1))}, available]
      - [{local(s.break_start)}, pause, Break]
      - [{local(s.back)}, available]
"""


def am_config(receiver_url: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "agent"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "hook", "webhook_configs": [{"url": receiver_url, "send_resolved": True}]}
        ],
    }


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Receiver, str]]:
    """A local webhook receiver that records every payload Alertmanager delivers."""
    receiver = Receiver()
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield receiver, f"http://127.0.0.1:{port}/am"
    await runner.cleanup()


@pytest.fixture
async def alertmanager(hook: tuple[Receiver, str], tmp_path: Path) -> AsyncIterator[str]:
    """Debian's Alertmanager on a free loopback port, clustering off; yields its base URL."""
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(yaml.safe_dump(am_config(hook[1])))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(AM),
        f"--config.file={cfg}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 15
            while True:
                try:
                    async with session.get(f"{base}/-/ready") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.returncode is not None or time.monotonic() > deadline:
                    pytest.fail(f"alertmanager did not become ready (exit {proc.returncode})")
                await asyncio.sleep(0.05)
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def simulator() -> AsyncIterator[Callable[[Scenario], Any]]:
    """Serves scripted simulators on loopback in real (system-clock) time."""
    runners: list[web.AppRunner] = []

    async def serve(scenario: Scenario) -> tuple[Simulator, str]:
        clock = SystemClock()
        sim = Simulator.from_scenario(scenario, clock=clock)
        runner = web.AppRunner(create_app(sim, clock=clock), access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return sim, f"http://127.0.0.1:{port}"

    yield serve
    for runner in runners:
        await runner.cleanup()


def monitor_config(sim: Simulator, root: str, alertmanager_url: str) -> Config:
    creds = sim.credentials
    urls = base_urls(root)
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
                    "cadences": {
                        "user_states": CADENCE,
                        "queues": "off",
                        "agent_stats": "off",
                        "queue_ticker": "off",
                        "access_points": "off",
                        "jitter": "off",
                    },
                }
            ],
            "exporter": {"host": "127.0.0.1", "port": 0},
            "alerting": {
                "sinks": {SINK: {"type": "alertmanager", "url": alertmanager_url, "timeout": "5s"}},
                "group_wait": timedelta(seconds=0),
            },
        }
    )


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def ours(receiver: Receiver, status: str) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """(arrival monotonic, payload, alert) for every alert of `status` about our agent."""
    out = []
    # the receiver answers everything with 200, so requests and accepted payloads pair up
    for (arrived, _, _), payload in zip(receiver.requests, receiver.accepted, strict=True):
        for item in payload["alerts"]:
            if item["status"] == status and item["labels"].get("agent") == AGENT:
                out.append((arrived, payload, item))
    return out


async def wait_for(what: str, found: Callable[[], bool], deadline: float) -> None:
    while not found():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def notifications(port: int) -> float:
    """puzzelmon_notifications_total{sink=SINK} as the monitor's /metrics shows it."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "puzzelmon_notifications_total" and sample.labels == {"sink": SINK}:
                return float(sample.value)
    return 0.0


async def test_break_overrun_reaches_alertmanager_webhook_and_resolves(
    alertmanager: str,
    hook: tuple[Receiver, str],
    simulator: Callable[[Scenario], Any],
    redis_client: aioredis.Redis,
) -> None:
    """A break overrun played by the simulator arrives from Alertmanager's webhook as a firing
    break_overrun alert for the agent, and the resolve for the same alert follows once the agent
    is back."""
    receiver, _ = hook
    script = Script.around(SystemClock().now())
    wall0, mono0 = datetime.now(UTC), time.monotonic()
    scenario = parse_scenario(scenario_text(script), "alert-chain")
    sim, root = await simulator(scenario)
    config = monitor_config(sim, root, alertmanager)
    ruleset = ruleset_from_mapping(scenario.rules, scenario.activities, only_listed=True)
    key_prefix = "pzm-chain"
    await ScheduleStore(redis_client, key_prefix=key_prefix).replace(
        scenario.customer_key,
        scenario.timezone,
        [s for a in scenario.agents for s in a.segments],
    )
    monitor = Monitor(
        config,
        clock=SystemClock(),
        redis=redis_client,
        ruleset=ruleset,
        host="127.0.0.1",
        port=0,
        key_prefix=key_prefix,
    )

    def at(t: datetime) -> float:
        """`t` on the monotonic clock the receiver stamps arrivals with."""
        return mono0 + (t - wall0).total_seconds()

    await monitor.start()
    try:
        await wait_for(
            "the firing notification", lambda: bool(ours(receiver, "firing")), at(script.fires) + 15
        )
        await wait_for(
            "the resolved notification",
            lambda: bool(ours(receiver, "resolved")),
            at(script.back) + 15,
        )
        assert monitor.service.bound_port is not None
        delivered = await notifications(monitor.service.bound_port)
        assert monitor.failed is None
    finally:
        await monitor.stop(grace=1)

    arrived, payload, firing = ours(receiver, "firing")[0]
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "hook"
    labels = firing["labels"]
    assert labels["alertname"] == "break_overrun"
    assert labels["rule"] == "break_overrun"
    assert labels["tenant"] == scenario.customer_key
    assert labels["team"] == "Support"
    # not before the pause had outlasted the break by `after` (1 s slack: clocks, rounding)
    assert arrived >= at(script.fires) - 1
    # the alert starts when the pause outlasted the scheduled break
    assert abs((parse_time(firing["startsAt"]) - script.break_end).total_seconds()) <= 2

    resolved_at, resolved_payload, resolved = ours(receiver, "resolved")[0]
    assert resolved_payload["status"] == "resolved"
    assert resolved["labels"] == labels
    assert resolved["fingerprint"] == firing["fingerprint"]
    # our fingerprint (used by the outbox and the webhook sink) is Alertmanager's own
    assert firing["fingerprint"] == fingerprint(labels)
    assert resolved_at > arrived
    ends = parse_time(resolved["endsAt"])
    assert script.back - timedelta(seconds=1) <= ends <= script.back + timedelta(seconds=5)

    # only the one rule is enabled, and it fired once for this one agent
    every = {
        (a["labels"]["alertname"], a["labels"].get("agent"))
        for p in receiver.accepted
        for a in p["alerts"]
    }
    assert every == {("break_overrun", AGENT)}
    # the firing and the resolving notification were both delivered to Alertmanager
    assert delivered >= 2
