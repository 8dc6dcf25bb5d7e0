"""`puzzel-monitor run` as a subprocess: graceful SIGTERM during a poll, exit code 3 on a taken
port, and the in-process Service."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.app.service import Service
from monitor.core.clock import SystemClock
from monitor.simulator.app import create_app
from monitor.simulator.simulator import Simulator
from tests.redis_server import RedisServer, free_port
from tests.simserver import SimServers, config_for, tenant_dict

ROOT = Path(__file__).resolve().parents[2]


class LiveSimulator:
    """A simulator in real time whose middleware notes requests as they arrive."""

    def __init__(self) -> None:
        self.sim = Simulator.random(agents=30, groups=2, queues=2, clock=SystemClock(), seed=5)
        self.arrived = 0
        self.arrival = asyncio.Event()
        self.server: TestServer | None = None

    async def start(self) -> str:
        app = create_app(self.sim)

        @web.middleware
        async def note(request: web.Request, handler: Any) -> web.StreamResponse:
            self.arrived += 1
            self.arrival.set()
            response: web.StreamResponse = await handler(request)
            return response

        app.middlewares.append(note)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def live_sim() -> AsyncIterator[LiveSimulator]:
    sim = LiveSimulator()
    yield sim
    if sim.server is not None:
        await sim.server.close()


def write_config(
    tmp_path: Path, tenant: dict[str, Any], port: int, redis_url: str | None = None
) -> Path:
    config = {
        "tenants": [tenant],
        "redis": {"url": redis_url or "redis://127.0.0.1:1/0"},
        "exporter": {"host": "127.0.0.1", "port": port},
        "log": {"format": "json", "level": "info"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def start_run(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "run",
        "-c",
        str(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_ready(port: int, proc: asyncio.subprocess.Process, within: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            assert proc.returncode is None, "the service exited early"
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the service never became ready")


async def test_sigterm_during_a_poll_exits_0_without_traceback(
    tmp_path: Path, live_sim: LiveSimulator, redis_server: RedisServer
) -> None:
    """SIGTERM while a poll waits on a slow Puzzel: exit 0 within the grace period, no
    traceback, and a JSON 'stopped' log line."""
    tenant = tenant_dict(live_sim.sim, await live_sim.start())
    port = free_port()
    proc = await start_run(write_config(tmp_path, tenant, port, redis_server.url))
    try:
        await wait_ready(port, proc)
        live_sim.sim.faults.latency = 30.0  # every answer from now on hangs past the grace
        live_sim.arrival.clear()
        await asyncio.wait_for(live_sim.arrival.wait(), 15)  # a poll is in flight now
        await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 12)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = stderr.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    events = [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    assert "shutting down" in events
    assert events[-1] == "stopped"


async def test_sigint_exits_130_after_a_graceful_stop(
    tmp_path: Path, live_sim: LiveSimulator, redis_server: RedisServer
) -> None:
    """Ctrl-C (SIGINT) stops as gracefully as SIGTERM but exits 130, as documented."""
    tenant = tenant_dict(live_sim.sim, await live_sim.start())
    port = free_port()
    proc = await start_run(write_config(tmp_path, tenant, port, redis_server.url))
    try:
        await wait_ready(port, proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), 12)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = stderr.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    events = [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    assert events[-1] == "stopped"


async def test_taken_port_exits_3(
    tmp_path: Path, live_sim: LiveSimulator, redis_server: RedisServer
) -> None:
    """When the metrics port is taken, `run` exits 3 with a message naming the address."""
    tenant = tenant_dict(live_sim.sim, await live_sim.start())
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        proc = await start_run(write_config(tmp_path, tenant, port, redis_server.url))
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 3
    assert f"127.0.0.1:{port}" in stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_unreachable_redis_exits_3(tmp_path: Path, live_sim: LiveSimulator) -> None:
    """When Redis cannot be reached at start-up, `run` exits 3 with a one-line message."""
    tenant = tenant_dict(live_sim.sim, await live_sim.start())
    config = write_config(tmp_path, tenant, free_port(), f"redis://127.0.0.1:{free_port()}/0")
    proc = await start_run(config)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 3, stderr.decode()
    assert "cannot reach Redis" in stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_service_in_process_start_stop() -> None:
    """Service starts, becomes ready after its first state poll, serves /metrics, and stops."""
    sims = SimServers()
    try:
        server = await sims.start()
        service = Service(config_for(server), clock=SystemClock())
        await service.start()
        try:
            url = f"http://127.0.0.1:{service.bound_port}"
            async with aiohttp.ClientSession() as session:
                for _ in range(100):
                    async with session.get(f"{url}/readyz") as resp:
                        if resp.status == 200:
                            break
                    await asyncio.sleep(0.05)
                assert resp.status == 200
                async with session.get(f"{url}/metrics") as resp:
                    text = await resp.text()
            assert 'puzzelmon_up{endpoint="user_states",tenant="12345"} 1.0' in text
        finally:
            await service.stop(grace=1)
        assert service.scheduler.in_flight == 0
    finally:
        await sims.close()


async def test_run_against_public_profile_is_ready_within_two_cycles(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """`run` against the public-evidence simulator, with the unevidenced endpoints turned on by
    mistake: ready before the third agent-state call, every agent counted, the missing
    endpoints reported unsupported (not down), and no row rejected."""
    sim = Simulator.random(
        agents=30, groups=2, queues=2, clock=SystemClock(), seed=5, profile="public"
    )
    server = TestServer(create_app(sim), host="127.0.0.1")
    await server.start_server()
    tenant = tenant_dict(sim, str(server.make_url("")).rstrip("/"))
    tenant["endpoints"] = {"agent_stats": True, "visual_queue_ticker": True}
    two = "2s"
    tenant["cadences"] = {"user_states": two, "queues": two, "agent_stats": two,
                          "queue_ticker": two, "access_points": "off", "jitter": "off"}  # fmt: skip
    port = free_port()
    proc = await start_run(write_config(tmp_path, tenant, port, redis_server.url))
    try:
        await wait_ready(port, proc)
        state_calls = [r for r in sim.requests if r.endpoint == "user_group_state_information"]
        assert len(state_calls) <= 2
        await asyncio.sleep(2.5)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            text = await resp.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 15)
        await server.close()
    samples = _samples(text)
    key = f'tenant="{sim.customer_key}"'
    for endpoint in ("agent_stats", "queue_ticker"):
        assert samples[f'puzzelmon_endpoint_supported{{endpoint="{endpoint}",{key}}}'] == 0
        assert f'puzzelmon_up{{endpoint="{endpoint}",{key}}}' not in samples
    assert samples[f'puzzelmon_up{{endpoint="user_states",{key}}}'] == 1
    agents = sum(v for k, v in samples.items() if k.startswith("puzzelmon_agents{"))
    assert agents == 30
    assert not [k for k in samples if k.startswith("puzzelmon_rows_rejected_total")]


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
