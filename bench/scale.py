"""5. Scale: the largest number of agents one process follows at a 5 s cadence without falling
behind (cycle CPU < 0.5 s, i.e. under 10% of the cadence), found by bisecting on the measured
cycle cost; and the number of 500-agent tenants that fit the same budget.

A cycle here is what `bench.cycle` measures: the state poll through the pipeline plus one
/metrics render (a scrape every cycle, the conservative case).
"""

from __future__ import annotations

import aiohttp
import redis.asyncio as aioredis

from bench.common import BenchResult, median, timed
from bench.cycle import build_tape, measure_cycle
from bench.tape import ReplayTenant
from monitor.http.metrics import Exporter
from monitor.ingest.pollers import LatestSnapshots
from monitor.pipeline.cycle import PipelineSet

BUDGET = 0.5  # seconds of CPU per 5 s cycle


async def cycle_cost(agents: int, redis: aioredis.Redis, cycles: int) -> float:
    # each probe starts from an empty store: schedules left by a larger probe would otherwise be
    # evaluated too (scheduled agents that no poll lists count as logged off)
    await redis.flushdb()
    sim, tape = await build_tape(agents, max(4, agents // 20), cycles)
    m = await measure_cycle(sim, tape, redis, repeats=1)
    return m.full_cpu


async def max_agents(
    redis: aioredis.Redis,
    *,
    cycles: int,
    steps: int,
    hint: tuple[int, float] | None,
    cap: int = 200_000,
) -> tuple[int, list[tuple[int, float]]]:
    """Bisect on agents between a size that fits and one that does not."""
    probes: list[tuple[int, float]] = []

    async def probe(n: int) -> float:
        cost = await cycle_cost(n, redis, cycles)
        probes.append((n, cost))
        return cost

    if hint is None:
        n0 = 500
        hint = (n0, await probe(n0))
    n0, c0 = hint
    guess = min(cap, max(20, int(n0 * BUDGET / c0)) if c0 > 0 else n0)
    lo, hi = 0, 0
    c = await probe(guess)
    if c < BUDGET:
        lo, hi = guess, guess * 2
        while hi <= cap and await probe(hi) < BUDGET:
            lo, hi = hi, hi * 2
    else:
        lo, hi = guess // 2, guess
        while lo > 20 and await probe(lo) >= BUDGET:
            lo, hi = lo // 2, lo
    for _ in range(steps):
        if hi - lo <= max(50, lo // 20):
            break
        mid = (lo + hi) // 2
        if await probe(mid) < BUDGET:
            lo = mid
        else:
            hi = mid
    return lo, probes


async def tenants_cost(tenants: int, agents: int, redis: aioredis.Redis, cycles: int) -> float:
    """CPU of one 5 s round: every tenant's state cycle plus one /metrics render of them all."""
    await redis.flushdb()
    sim, tape = await build_tape(agents, max(4, agents // 20), cycles)
    store = LatestSnapshots()
    view = PipelineSet()
    rts: list[ReplayTenant] = []
    costs: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(tenants):
            rt = ReplayTenant(
                tape, sim, redis, session, customer_key=f"t{i:03d}", store=store, instrument=False
            )
            await redis.delete(*rt.state_store.keys(rt.tenant))
            await rt.load_schedules(sim)
            await rt.start()
            view.add(rt.pipeline)
            rts.append(rt)
        exporter = Exporter(
            store,
            tenants=lambda: [r.pollers for r in rts],
            clients=lambda: {r.tenant: r.client for r in rts},
            engine=view,
            render_cache_seconds=0,
        )
        for rt in rts:
            await rt.state_cycle()
        for _ in range(tape.timed_cycles):
            with timed() as t:
                for rt in rts:
                    await rt.state_cycle()
                exporter.render()
            costs.append(t.cpu)
    return median(costs)


async def max_tenants(
    redis: aioredis.Redis, *, agents: int, cycles: int, cap: int = 100
) -> tuple[int, list[tuple[int, float]]]:
    probes: list[tuple[int, float]] = []
    one = await tenants_cost(1, agents, redis, cycles)
    probes.append((1, one))
    if one >= BUDGET:
        return 0, probes
    n = min(cap, max(1, int(BUDGET / one)))
    cost = await tenants_cost(n, agents, redis, cycles)
    probes.append((n, cost))
    while cost >= BUDGET and n > 1:
        n -= 1
        cost = await tenants_cost(n, agents, redis, cycles)
        probes.append((n, cost))
    while cost < BUDGET and len(probes) < 6 and n < cap:
        nxt = await tenants_cost(n + 1, agents, redis, cycles)
        probes.append((n + 1, nxt))
        if nxt >= BUDGET:
            break
        n, cost = n + 1, nxt
    return n, probes


async def run(
    *,
    redis_url: str,
    cycles: int,
    steps: int,
    tenant_agents: int = 500,
    hint: tuple[int, float] | None = None,
    agents_cap: int = 200_000,
    tenants_cap: int = 100,
) -> BenchResult:
    result = BenchResult("scale", "Scale at a 5 s cadence")
    redis = aioredis.Redis.from_url(redis_url)
    try:
        n, probes = await max_agents(redis, cycles=cycles, steps=steps, hint=hint, cap=agents_cap)
        result.data["agents_probes"] = probes
        result.add(
            "agents one process follows (cycle CPU < 0.5 s)",
            float(n),
            "agents",
            note="probes: " + ", ".join(f"{a:,}->{c * 1000:.0f} ms" for a, c in sorted(probes)),
        )
        t, tprobes = await max_tenants(redis, agents=tenant_agents, cycles=cycles, cap=tenants_cap)
        result.data["tenant_probes"] = tprobes
        result.add(
            f"tenants of {tenant_agents} agents in one process",
            float(t),
            "tenants",
            note="probes: " + ", ".join(f"{k}->{c * 1000:.0f} ms" for k, c in tprobes),
        )
    finally:
        await redis.aclose()
    result.notes.append(
        "Budget: 10% of the 5 s cadence = 0.5 s CPU per cycle, including one /metrics render "
        "per cycle (per-agent series on). Queues: agents/20 per centre."
    )
    return result
