"""End to end: the real `prometheus` binary scrapes the in-process service, which polls the
simulator over HTTP; what Prometheus stored matches the simulator's ground truth."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.app.service import Service
from monitor.core.clock import SystemClock
from tests.redis_server import free_port
from tests.simserver import SimServers, config_for

PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is not installed"),
]


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as resp:
        body = await resp.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def wait_for(
    session: aiohttp.ClientSession, base: str, promql: str, n: int, within: float = 30
) -> list[dict[str, Any]]:
    """Query until at least `n` series come back (or `within` seconds pass)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            result = await query(session, base, promql)
        except aiohttp.ClientError:
            result = []
        if len(result) >= n or loop.time() > deadline:
            return result
        await asyncio.sleep(0.25)


@pytest.fixture
async def sims() -> AsyncIterator[SimServers]:
    servers = SimServers()
    yield servers
    await servers.close()


async def test_prometheus_stores_what_the_simulator_shows(sims: SimServers, tmp_path: Path) -> None:
    """puzzelmon_agents and a queue gauge read back through Prometheus's query API equal the
    (frozen) simulator's ground truth."""
    server = await sims.start(agents=120, groups=4, queues=5)
    # the simulator's virtual clock is never advanced: its state is frozen
    config = config_for(server)
    service = Service(config, clock=SystemClock(), seed=1)
    await service.start()
    prom_port = free_port()
    tmp = tmp_path
    (tmp / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: puzzelmon\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{service.bound_port}']\n"
    )
    assert PROMETHEUS is not None
    proc = await asyncio.create_subprocess_exec(
        PROMETHEUS,
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{prom_port}"
    try:
        async with aiohttp.ClientSession() as session:
            up = await wait_for(session, base, 'up{job="puzzelmon"} == 1', 1)
            assert up, "Prometheus never scraped the exporter successfully"
            truth = server.sim.agent_states()
            group_of = {u.agent_id: u.group_name for u in server.sim.centre.users()}
            expected = Counter((group_of[a], s.kind.value) for a, (s, _) in truth.items())
            teams = len(server.sim.centre.user_groups())
            # all teams x all states, once the first state poll made it into a scrape
            series = await wait_for(session, base, "puzzelmon_agents", teams * 9)
            got = {
                (r["metric"]["team"], r["metric"]["state"]): float(r["value"][1]) for r in series
            }
            assert len(got) == teams * 9
            for (team, state), value in got.items():
                assert value == expected.get((team, state), 0), (team, state)
            assert sum(got.values()) == len(truth)

            queues = server.sim.queue_figures()
            qid = sorted(queues)[0]
            promql = f'puzzelmon_queue_requests_waiting{{queue="{qid}"}}'
            waiting = await wait_for(session, base, promql, 1)
            assert len(waiting) == 1
            assert float(waiting[0]["value"][1]) == queues[qid]["queueSize"]
            assert waiting[0]["metric"]["tenant"] == config.tenants[0].customer_key
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await service.stop(grace=1)
