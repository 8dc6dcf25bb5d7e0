"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks against the simulator, print
a table and write .bench-out/results.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cycle, economy, history, latency, replay, scale, scrape
from bench.common import BenchResult, RedisProcess, machine
from bench.report import table
from monitor.app.logging import configure_logging
from monitor.app.testing import RedisServer

NAMES = ("cycle", "economy", "scale", "latency", "scrape", "history", "replay")


@dataclass(frozen=True)
class Plan:
    """Sizes for a full or a quick run."""

    cycle_sizes: list[tuple[int, int]]
    cycle_cycles: int
    cycle_repeats: int
    economy_sizes: list[tuple[int, int]]
    economy_minutes: float
    latency_incidents: int
    latency_spacing: float
    render_sizes: list[tuple[int, int]]
    memory_agents: int
    memory_cycles: int
    scale_cycles: int
    scale_steps: int
    replay_sizes: list[int]
    history_agents: int

    @classmethod
    def full(cls) -> Plan:
        return cls(
            cycle_sizes=[(1000, 50), (10000, 500)],
            cycle_cycles=4,
            cycle_repeats=3,
            economy_sizes=[(1000, 50), (10000, 500)],
            economy_minutes=1,
            latency_incidents=40,
            latency_spacing=3.7,
            render_sizes=[(1000, 50), (10000, 500)],
            memory_agents=1000,
            memory_cycles=720,
            scale_cycles=3,
            scale_steps=3,
            replay_sizes=[50, 500],
            history_agents=1000,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            cycle_sizes=[(1000, 50)],
            cycle_cycles=3,
            cycle_repeats=1,
            economy_sizes=[(1000, 50)],
            economy_minutes=1,
            latency_incidents=6,
            latency_spacing=3.7,
            render_sizes=[(1000, 50)],
            memory_agents=1000,
            memory_cycles=60,
            scale_cycles=2,
            scale_steps=1,
            replay_sizes=[50],
            history_agents=1000,
        )


async def run_all(names: list[str], plan: Plan, redis: RedisServer) -> list[BenchResult]:
    db = redis.url.rsplit("/", 1)[0]
    results: list[BenchResult] = []

    async def one(name: str, coro: Any) -> BenchResult:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            res: BenchResult = await coro
        except Exception as e:  # one broken benchmark must not lose the others' figures
            traceback.print_exc()
            res = BenchResult(name, name, skipped=f"failed: {type(e).__name__}: {e}"[:300])
        res.seconds = round(time.perf_counter() - t0, 1)
        print(f"[bench] {name} done in {res.seconds:.0f} s", file=sys.stderr, flush=True)
        results.append(res)
        return res

    hint: tuple[int, float] | None = None
    if "cycle" in names:
        res = await one(
            "cycle",
            cycle.run(
                sizes=plan.cycle_sizes,
                cycles=plan.cycle_cycles,
                repeats=plan.cycle_repeats,
                redis_url=f"{db}/0",
            ),
        )
        first = res.data.get(str(plan.cycle_sizes[0][0]))
        if first:
            hint = (int(first["agents"]), float(first["full_cpu"]))
    if "economy" in names:
        await one("economy", economy.run(sizes=plan.economy_sizes, minutes=plan.economy_minutes))
    if "scale" in names:
        await one(
            "scale",
            scale.run(
                redis_url=f"{db}/3", cycles=plan.scale_cycles, steps=plan.scale_steps, hint=hint
            ),
        )
    memory_job = None
    if "scrape" in names and "latency" in names and plan.memory_cycles > 0:
        # the latency benchmark mostly waits in real time: let the memory hour run beside it
        memory_job = scrape.MemoryJob(plan.memory_agents, plan.memory_cycles, f"{db}/1")
    if "latency" in names:
        await one(
            "latency",
            latency.run(
                redis_url=f"{db}/2",
                incidents=plan.latency_incidents,
                spacing=plan.latency_spacing,
            ),
        )
    if "scrape" in names:
        await one(
            "scrape",
            scrape.run(
                sizes=plan.render_sizes,
                memory_agents=plan.memory_agents,
                memory_cycles=plan.memory_cycles,
                redis_url=f"{db}/1",
                memory_job=memory_job,
            ),
        )
    if "replay" in names:
        out_dir = Path(".bench-out")
        await one("replay", asyncio.to_thread(replay.run, sizes=plan.replay_sizes, out_dir=out_dir))
    if "history" in names:
        await one("history", history.run(redis_url=f"{db}/4", agents=plan.history_agents))
    order = {n: i for i, n in enumerate(NAMES)}
    results.sort(key=lambda r: order.get(r.name, 99))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a fast subset (about 2 minutes)")
    parser.add_argument(
        "--only",
        action="append",
        choices=NAMES,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(NAMES)}",
    )
    parser.add_argument("--out", default=".bench-out/results.json", help="JSON results file")
    args = parser.parse_args(argv)
    configure_logging("warning", "console", stream=sys.stderr)
    names = list(args.only or NAMES)
    plan = Plan.quick() if args.quick else Plan.full()
    started = time.perf_counter()
    with RedisProcess() as redis:
        results = asyncio.run(run_all(names, plan, redis))
    total = time.perf_counter() - started
    print(table(results))
    print(f"\ntotal {total:.0f} s ({'quick' if args.quick else 'full'} run)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "command": "python -m bench"
                + (" --quick" if args.quick else "")
                + "".join(f" --only {n}" for n in args.only or []),
                "quick": args.quick,
                "seconds": round(total, 1),
                "machine": machine(),
                "results": [r.to_dict() for r in results],
            },
            indent=2,
            default=str,
        )
    )
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
