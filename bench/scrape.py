"""4. Scrape cost (/metrics render time and size, per-agent series on and off) and the monitor's
resident memory after an hour of simulated time.

The memory run happens in a child process (`python -m bench.scrape --memory ...`) so that what
the other benchmarks keep in memory is not counted: the child builds the simulator, notes its
RSS (the baseline: interpreter, libraries, simulator), then drives the real pollers (every
endpoint kind), pipeline, outbox and Redis state at a 5 s cadence for 720 cycles on a
VirtualClock over loopback HTTP, rendering /metrics every 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench.common import (
    BENCH_START,
    QUEUE_CADENCE,
    STATE_CADENCE,
    TICKER_CADENCE,
    BenchResult,
    SimServer,
    groups_for,
    median,
    rss_bytes,
    tenant_config,
    timed,
)
from bench.cycle import build_tape
from bench.tape import ReplayTenant
from monitor.alerts.outbox import Outbox
from monitor.app.service import tenant_pollers
from monitor.app.wiring import tenant_pipeline
from monitor.core.clock import VirtualClock
from monitor.http.metrics import Exporter
from monitor.ingest.pollers import LatestSnapshots
from monitor.pipeline.cycle import PipelineSet
from monitor.rules.loader import default_ruleset
from monitor.schedules.store import ScheduleStore
from monitor.simulator.simulator import Simulator

MIB = 1024 * 1024


async def render_cost(agents: int, queues: int, redis_url: str, renders: int = 5) -> dict[str, Any]:
    """Render /metrics `renders` times with per-agent series on and off, after a few cycles."""
    sim, tape = await build_tape(agents, queues, cycles=2)
    redis = aioredis.Redis.from_url(redis_url)
    out: dict[str, Any] = {"agents": tape.agents}
    try:
        async with aiohttp.ClientSession() as session:
            rt = ReplayTenant(tape, sim, redis, session, instrument=False)
            await redis.delete(*rt.state_store.keys(rt.tenant))
            await rt.load_schedules(sim)
            await rt.start()
            for _ in range(tape.timed_cycles + 1):
                await rt.state_cycle()
            await rt.queue_poll()
            view = PipelineSet([rt.pipeline])
            for label, per_agent in (("on", True), ("off", False)):
                exporter = Exporter(
                    rt.store,
                    tenants=lambda: [rt.pollers],
                    clients=lambda: {rt.tenant: rt.client},
                    engine=view,
                    per_agent_series=per_agent,
                    render_cache_seconds=0,
                )
                cpu, wall, size, series = [], [], 0, 0
                for _ in range(renders):
                    with timed() as t:
                        body, _ = exporter.render()
                    cpu.append(t.cpu)
                    wall.append(t.wall)
                    size = len(body)
                    series = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
                out[label] = {
                    "cpu": median(cpu),
                    "wall": median(wall),
                    "bytes": size,
                    "series": series,
                }
    finally:
        await redis.aclose()
    return out


async def memory_hour(agents: int, cycles: int, redis_url: str) -> dict[str, Any]:
    """(In the child process.) RSS before and after `cycles` state cycles at 5 s."""
    from monitor.app.logging import configure_logging  # noqa: PLC0415 - child process set-up

    configure_logging("warning", "console")
    rss_start = rss_bytes()
    clock = VirtualClock(BENCH_START)
    sim = Simulator.random(
        agents=agents, groups=groups_for(agents), queues=max(4, agents // 20), seed=3, clock=clock
    )
    sim.agent_states()
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushdb()
    rss_sim = rss_bytes()
    samples: list[tuple[int, int]] = []
    t0 = time.perf_counter()
    try:
        async with SimServer(sim) as server, aiohttp.ClientSession() as session:
            cfg = tenant_config(sim, server.base)
            tenant = cfg.customer_key
            schedules = ScheduleStore(redis, key_prefix="pzm-mem")
            await schedules.replace(tenant, sim.timezone, sim.schedules())
            outbox = Outbox(redis, sinks=["webhook"], clock=clock, key_prefix="pzm-mem")
            await outbox.ensure_groups()
            pipeline = tenant_pipeline(
                tenant,
                redis=redis,
                ruleset=default_ruleset(),
                clock=clock,
                publisher=outbox,
                key_prefix="pzm-mem",
                schedules=schedules,
            )
            await pipeline.start()
            store = LatestSnapshots()
            client, pollers = tenant_pollers(
                cfg, session=session, clock=clock, store=store, sink=pipeline
            )
            exporter = Exporter(
                store,
                tenants=lambda: [pollers],
                clients=lambda: {tenant: client},
                engine=PipelineSet([pipeline]),
            )
            kinds = {
                "user_states": (STATE_CADENCE, pollers.poll_user_states),
                "queues": (QUEUE_CADENCE, pollers.poll_queues),
                "agent_stats": (TICKER_CADENCE, pollers.poll_agent_stats),
                "queue_ticker": (TICKER_CADENCE, pollers.poll_queue_ticker),
                "access_points": (TICKER_CADENCE, pollers.poll_access_points),
            }
            transitions = 0
            for step in range(cycles):
                clock.set(BENCH_START + timedelta(seconds=step * STATE_CADENCE))
                for kind, (every, poll) in kinds.items():
                    if step % round(every / STATE_CADENCE) == 0:
                        await pollers.run_poll(kind, poll)
                if step % 3 == 0:
                    exporter.render()
                transitions = len(pipeline.open_transitions)
                sim.requests.clear()  # the simulator's request log is not the monitor's memory
                if step in (0, cycles // 4, cycles // 2, (3 * cycles) // 4, cycles - 1):
                    samples.append((step, rss_bytes()))
    finally:
        await redis.aclose()
    return {
        "agents": agents,
        "cycles": cycles,
        "simulated_seconds": cycles * STATE_CADENCE,
        "rss_start": rss_start,
        "rss_baseline": rss_sim,
        "rss_samples": samples,
        "rss_end": samples[-1][1] if samples else rss_bytes(),
        "open_alerts_end": transitions,
        "seconds": time.perf_counter() - t0,
    }


def memory_command(agents: int, cycles: int, redis_url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.scrape",
        "--memory",
        "--agents",
        str(agents),
        "--cycles",
        str(cycles),
        "--redis-url",
        redis_url,
    ]


class MemoryJob:
    """The memory run in a child process, started now and read later (it can run while the
    real-time latency benchmark mostly waits)."""

    def __init__(self, agents: int, cycles: int, redis_url: str) -> None:
        self.proc = subprocess.Popen(
            memory_command(agents, cycles, redis_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )

    def result(self) -> dict[str, Any]:
        out, err = self.proc.communicate()
        if self.proc.returncode != 0:
            raise RuntimeError(f"memory child failed ({self.proc.returncode}): {err[-2000:]}")
        data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return data


async def run(
    *,
    sizes: list[tuple[int, int]],
    memory_agents: int,
    memory_cycles: int,
    redis_url: str,
    memory_job: MemoryJob | None = None,
) -> BenchResult:
    result = BenchResult("scrape", "Scrape cost and memory")
    for agents, queues in sizes:
        r = await render_cost(agents, queues, redis_url)
        result.data[f"render_{agents}"] = r
        for label in ("on", "off"):
            d = r[label]
            result.add(
                f"/metrics render, {agents:,} agents, per-agent series {label}",
                round(d["cpu"] * 1000, 1),
                "ms",
                note=f"{d['bytes'] / 1024:,.0f} KiB, {d['series']:,} series",
            )
    if memory_cycles > 0:
        job = memory_job or MemoryJob(memory_agents, memory_cycles, redis_url)
        mem = await asyncio.to_thread(job.result)
        result.data["memory"] = mem
        hours = mem["simulated_seconds"] / 3600
        growth = (mem["rss_end"] - mem["rss_baseline"]) / MIB
        result.add(
            f"RSS after {hours:g} h simulated ({memory_agents:,} agents, {memory_cycles} cycles)",
            round(mem["rss_end"] / MIB, 1),
            "MiB",
            note=(
                f"process incl. in-process simulator; baseline {mem['rss_baseline'] / MIB:.1f} MiB"
            ),
        )
        result.add("  monitor's growth over the baseline", round(growth, 1), "MiB")
        mid = mem["rss_samples"][len(mem["rss_samples"]) // 2][1] if mem["rss_samples"] else 0
        result.add(
            "  growth over the second half of the run",
            round((mem["rss_end"] - mid) / MIB, 1),
            "MiB",
            note="near 0 = no leak per cycle",
        )
    result.notes.append(
        "Render = Exporter.render, what /metrics serves (text format 0.0.4; per-agent families "
        "from cached lines, the rest by prometheus_client; no render cache), CPU median of 5. "
        "Memory: a child process, RSS from /proc/self/status; the "
        "baseline is taken after the simulator is built, before the monitor starts."
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scrape")
    parser.add_argument("--memory", action="store_true", required=True)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=720)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    data = asyncio.run(memory_hour(args.agents, args.cycles, args.redis_url))
    print(json.dumps(data))


if __name__ == "__main__":
    main()
