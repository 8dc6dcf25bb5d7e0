"""2. Request economy: requests to Puzzel per minute, from the simulator's request log, over
simulated minutes on a virtual clock, against a per-agent poller of the same data."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import aiohttp

from bench.common import (
    BENCH_START,
    QUEUE_CADENCE,
    STATE_CADENCE,
    TICKER_CADENCE,
    BenchResult,
    SimServer,
    groups_for,
    tenant_config,
)
from monitor.app.service import tenant_pollers
from monitor.core.clock import VirtualClock
from monitor.ingest.pollers import LatestSnapshots
from monitor.simulator.simulator import Simulator


async def measure(
    agents: int, queues: int, minutes: float, warmup: float = 15.0
) -> dict[str, object]:
    """Poll every endpoint kind at the shipped cadences for `warmup` + `minutes` simulated
    minutes; count what the simulator served after the warm-up."""
    clock = VirtualClock(BENCH_START)
    sim = Simulator.random(
        agents=agents, groups=groups_for(agents), queues=queues, seed=2, clock=clock
    )
    async with SimServer(sim) as server, aiohttp.ClientSession() as session:
        # one call per group: the upper bound (the default `all` mode makes one call in all)
        cfg = tenant_config(sim, server.base, combined_state_call=False)
        _, pollers = tenant_pollers(cfg, session=session, clock=clock, store=LatestSnapshots())
        kinds = {
            "user_states": (STATE_CADENCE, pollers.poll_user_states),
            "queues": (QUEUE_CADENCE, pollers.poll_queues),
            "agent_stats": (TICKER_CADENCE, pollers.poll_agent_stats),
            "queue_ticker": (TICKER_CADENCE, pollers.poll_queue_ticker),
            "access_points": (TICKER_CADENCE, pollers.poll_access_points),
        }
        total = warmup + minutes * 60.0
        steps = round(total / STATE_CADENCE)
        start_index = 0
        for step in range(steps):
            t = step * STATE_CADENCE
            clock.set(BENCH_START + timedelta(seconds=t))
            if t >= warmup and start_index == 0:
                start_index = len(sim.requests)
            for kind, (every, poll) in kinds.items():
                if round(t / STATE_CADENCE) % round(every / STATE_CADENCE) == 0:
                    await pollers.run_poll(kind, poll)
        window = sim.requests[start_index:]
        by_endpoint = Counter(r.endpoint or "unmatched" for r in window)
        failures = sum(1 for r in window if r.status >= 400)
    per_minute = len(window) / minutes
    per_agent = agents * 60.0 / STATE_CADENCE
    return {
        "agents": agents,
        "groups": len(sim.centre.user_groups()),
        "queues": queues,
        "minutes": minutes,
        "requests": len(window),
        "failures": failures,
        "per_minute": per_minute,
        "per_second": per_minute / 60.0,
        "by_endpoint_per_minute": {k: v / minutes for k, v in sorted(by_endpoint.items())},
        "per_agent_poller_per_minute": per_agent,
        "saving_ratio": per_agent / per_minute if per_minute else float("nan"),
    }


async def run(*, sizes: list[tuple[int, int]], minutes: float) -> BenchResult:
    result = BenchResult("economy", "Request economy")
    for agents, queues in sizes:
        m = await measure(agents, queues, minutes)
        result.data[str(agents)] = m
        per_min = float(m["per_minute"])  # type: ignore[arg-type]
        result.add(
            f"requests/min to Puzzel, {agents:,} agents ({m['groups']} groups)",
            round(per_min, 1),
            "req/min",
            ratio=round(per_min / float(m["per_agent_poller_per_minute"]), 4),  # type: ignore[arg-type]
            ratio_of="per-agent poller",
            note=f"{float(m['per_second']):.1f} req/s",  # type: ignore[arg-type]
        )
        by = m["by_endpoint_per_minute"]
        assert isinstance(by, dict)
        for endpoint, n in by.items():
            result.add(f"  {endpoint}", round(float(n), 1), "req/min")
        result.add(
            f"  per-agent poller of the same states ({agents:,} x 12/min)",
            float(m["per_agent_poller_per_minute"]),  # type: ignore[arg-type]
            "req/min",
        )
    result.notes.append(
        "Counted from the simulator's request log over simulated minutes on a VirtualClock, "
        "after a 15 s warm-up (token, group list, pause types); all five endpoint kinds at "
        "the shipped cadences (states 5 s with up to 10 per-user calls per cycle, queues "
        "15 s, tickers 60 s)."
    )
    return result
