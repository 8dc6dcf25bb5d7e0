"""1. Cost per agent-state cycle, against the floor of decoding the same JSON with orjson.

The simulator's answers are captured once over loopback HTTP (`bench.tape.capture`), then fed
to the monitor through the client's HTTP seam: envelope + pydantic validation, pollers, tracker,
engine, outbox, the engine state written to a real redis-server, and one /metrics render. The
HTTP stack and the simulator's cost of producing the answers are not in these figures.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from prometheus_client import generate_latest

from bench.common import (
    BENCH_START,
    BenchResult,
    constant,
    groups_for,
    median,
    timed,
)
from bench.tape import ReplayTenant, Tape, capture
from monitor.app.gc_tuning import tune_gc
from monitor.core.clock import VirtualClock
from monitor.http.metrics import Exporter
from monitor.pipeline.cycle import PipelineSet
from monitor.simulator.simulator import Simulator

# issue 16's goals, at 10,000 agents: the cycle including one /metrics render, without it, and
# the render of the per-agent series
GOAL_RATIO = 15.0
GOAL_POLL_RATIO = 8.0
GOAL_RENDER_SECONDS = 0.100
STAGES = ("client_parse", "tracker", "engine", "redis_write", "metrics_render", "other")


@dataclass
class CycleMeasure:
    """Medians over every timed cycle of every repeat (seconds, CPU unless named wall)."""

    agents: int
    groups: int
    queues: int
    cycles: int
    body_bytes: int
    full_cpu: float
    full_wall: float
    poll_cpu: float  # the state cycle without the metrics render
    floor_cpu: float
    stages: dict[str, float]
    redis_write_wall: float
    state_bytes: int
    render_cpu: float
    render_bytes: int
    render_off_cpu: float  # per-agent series off
    render_ref_cpu: float  # the same body rendered by client_python alone (the reference)
    render_off_bytes: int
    series_on: int
    series_off: int
    queue_poll_cpu: float | None
    save_cpu: float | None  # an incremental save of the engine state after the timed cycles
    whole_save_cpu: float | None  # the same state written whole
    profile: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.full_cpu / self.floor_cpu if self.floor_cpu > 0 else float("nan")


def floor_of(bodies: list[bytes], repeats: int = 3) -> float:
    """CPU seconds to merely decode `bodies` with orjson.loads (median of `repeats`)."""
    samples = []
    for _ in range(repeats):
        t0 = time.process_time()
        for b in bodies:
            orjson.loads(b)
        samples.append(time.process_time() - t0)
    return median(samples)


def _series(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


async def build_tape(
    agents: int, queues: int, cycles: int, seed: int = 1
) -> tuple[Simulator, Tape]:
    clock = VirtualClock(BENCH_START)
    sim = Simulator.random(
        agents=agents, groups=groups_for(agents), queues=queues, seed=seed, clock=clock
    )
    tape = await capture(sim, clock, cycles=cycles)
    # the collector as `run` sets it (monitor.app.gc_tuning); the simulator and the tape, which
    # a real monitor does not hold, are frozen with the rest and so cost it nothing either
    tune_gc()
    return sim, tape


def _top_functions(profiler: cProfile.Profile, n: int = 12) -> list[str]:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    rows = []
    for func, (_cc, _nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        filename, line, name = func
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append((tt, ct, f"{short}:{line}({name})"))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows) or 1.0
    return [
        f"{tt / total:5.1%} self {tt:6.3f}s  cum {ct:6.3f}s  {where}" for tt, ct, where in rows[:n]
    ]


@dataclass
class _Samples:
    """Per timed cycle: CPU and wall times of the whole cycle and of its parts."""

    full: list[float] = field(default_factory=list)
    full_wall: list[float] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)
    renders: list[float] = field(default_factory=list)
    renders_off: list[float] = field(default_factory=list)
    renders_ref: list[float] = field(default_factory=list)
    saves: list[float] = field(default_factory=list)
    whole_saves: list[float] = field(default_factory=list)
    render_bytes: int = 0
    render_off_bytes: int = 0
    series_on: int = 0
    series_off: int = 0
    state_bytes: int = 0
    stage_samples: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    redis_wall: list[float] = field(default_factory=list)
    queue_polls: list[float] = field(default_factory=list)


async def measure_cycle(
    sim: Simulator,
    tape: Tape,
    redis: aioredis.Redis,
    *,
    repeats: int = 3,
    profile: bool = False,
) -> CycleMeasure:
    """Replay `tape` `repeats` times through a fresh monitor; medians of the timed cycles."""
    sm = _Samples()
    prof_lines: list[str] = []
    schedules_loaded = False
    async with aiohttp.ClientSession() as session:
        for _ in range(repeats):
            rt = ReplayTenant(tape, sim, redis, session)
            await redis.delete(*rt.state_store.keys(rt.tenant))
            if not schedules_loaded:
                await rt.load_schedules(sim)
                schedules_loaded = True
            await rt.start()
            view = PipelineSet([rt.pipeline])

            def tenants(rt: ReplayTenant = rt) -> list[Any]:
                return [rt.pollers]

            def clients(rt: ReplayTenant = rt) -> dict[str, Any]:
                return {rt.tenant: rt.client}

            # no render cache: every render in these figures is a full one
            exporter, exporter_off = (
                Exporter(
                    rt.store,
                    tenants=tenants,
                    clients=clients,
                    engine=view,
                    per_agent_series=on,
                    render_cache_seconds=0,
                )
                for on in (True, False)
            )
            # warm-up cycle: first sight of every agent, schedules read, token fetched
            await rt.state_cycle()
            await rt.queue_poll()
            exporter.render()
            rt.stages.reset()
            for c in range(1, tape.timed_cycles + 1):
                await _timed_cycle(rt, (exporter, exporter_off), sm, last=c == tape.timed_cycles)
                if c % 3 == 0:
                    with timed() as t_q:
                        await rt.queue_poll()
                    sm.queue_polls.append(t_q.cpu)
            sm.state_bytes = int(await redis.memory_usage(rt.state_store.key(rt.tenant)) or 0)
            # the save a transition triggers (incremental: what changed since the warm-up's
            # save, lazy agents left lazy), and the state written whole after the lazy agents
            # are settled (as after Redis lost its data)
            with timed() as t_save:
                await rt.pipeline.checkpoint()
            with timed() as t_whole:
                await rt.pipeline.persist(whole=True)
            sm.saves.append(t_save.cpu)
            sm.whole_saves.append(t_whole.cpu)
            if profile and not prof_lines:
                prof_lines = await _profile_cycles(sim, tape, redis, session)
    return CycleMeasure(
        agents=tape.agents,
        groups=tape.groups,
        queues=tape.queues,
        cycles=len(sm.full),
        body_bytes=int(median([tape.cycle_bytes(i) for i in range(1, len(tape.cycles))])),
        full_cpu=median(sm.full),
        full_wall=median(sm.full_wall),
        poll_cpu=median(sm.polls),
        floor_cpu=median(sm.floors),
        stages={k: median(v) for k, v in sm.stage_samples.items()},
        redis_write_wall=median(sm.redis_wall),
        state_bytes=sm.state_bytes,
        render_cpu=median(sm.renders),
        render_bytes=sm.render_bytes,
        render_off_cpu=median(sm.renders_off),
        render_ref_cpu=median(sm.renders_ref),
        render_off_bytes=sm.render_off_bytes,
        series_on=sm.series_on,
        series_off=sm.series_off,
        queue_poll_cpu=median(sm.queue_polls) if sm.queue_polls else None,
        save_cpu=median(sm.saves) if sm.saves else None,
        whole_save_cpu=median(sm.whole_saves) if sm.whole_saves else None,
        profile=prof_lines,
    )


async def _timed_cycle(
    rt: ReplayTenant, exporters: tuple[Exporter, Exporter], sm: _Samples, *, last: bool
) -> None:
    """One state cycle and one render, timed, into `sm`."""
    exporter, exporter_off = exporters
    with timed() as t_poll:
        await rt.state_cycle()
    with timed() as t_render:
        body, _ = exporter.render()
    st = rt.stages.reset()
    sm.floors.append(floor_of([b for _, b in rt.player.served]))
    sm.polls.append(t_poll.cpu)
    sm.full.append(t_poll.cpu + t_render.cpu)
    sm.full_wall.append(t_poll.wall + t_render.wall)
    sm.renders.append(t_render.cpu)
    for k, v in _stages(st, t_render.cpu, sm.full[-1]).items():
        sm.stage_samples[k].append(v)
    sm.redis_wall.append(st.get("redis_write_wall", 0.0))
    with timed() as t_off:
        body_off, _ = exporter_off.render()
    sm.renders_off.append(t_off.cpu)
    if last:  # client_python over the whole registry, for scale
        with timed() as t_ref:
            generate_latest(exporter.registry)
        sm.renders_ref.append(t_ref.cpu)
    sm.render_bytes, sm.render_off_bytes = len(body), len(body_off)
    sm.series_on, sm.series_off = _series(body), _series(body_off)


def _stages(st: dict[str, float], render: float, full: float) -> dict[str, float]:
    """A cycle's CPU by stage, from the instrumented timings."""
    redis_w = st.get("redis_write", 0.0)  # the store's save: what changed, serialised and sent
    parts = {
        "client_parse": st.get("client_parse", 0.0),
        "tracker": st.get("tracker", 0.0),
        "engine": max(0.0, st.get("pipeline", 0.0) - redis_w),
        "redis_write": redis_w,
        "metrics_render": render,
    }
    parts["other"] = max(0.0, full - sum(parts.values()))
    return parts


async def _profile_cycles(
    sim: Simulator, tape: Tape, redis: aioredis.Redis, session: aiohttp.ClientSession
) -> list[str]:
    """A cProfile of the same cycles on an uninstrumented replay: its top functions."""
    profiler = cProfile.Profile()
    rt = ReplayTenant(tape, sim, redis, session, instrument=False)
    await redis.delete(*rt.state_store.keys(rt.tenant))
    await rt.start()
    exporter = Exporter(
        rt.store,
        tenants=constant([rt.pollers]),
        clients=constant({rt.tenant: rt.client}),
        engine=PipelineSet([rt.pipeline]),
        render_cache_seconds=0,
    )
    await rt.state_cycle()
    for _ in range(tape.timed_cycles):
        profiler.enable()
        await rt.state_cycle()
        exporter.render()
        profiler.disable()
    return _top_functions(profiler)


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def report_cycle(result: BenchResult, m: CycleMeasure) -> None:
    n = f"{m.agents:,} agents"
    result.add(
        f"state cycle CPU, {n} ({m.groups} groups, {m.queues} queues)",
        ms(m.full_cpu),
        "ms",
        ratio=round(m.ratio, 1),
        ratio_of="orjson floor",
        goal=f"< {GOAL_RATIO:g}x floor",
        met=m.ratio < GOAL_RATIO,
    )
    result.add(f"  orjson.loads floor, {n} ({m.body_bytes / 1e6:.2f} MB)", ms(m.floor_cpu), "ms")
    for stage in STAGES:
        v = m.stages[stage]
        result.add(
            f"  stage {stage}, {n}",
            ms(v),
            "ms",
            ratio=round(v / m.floor_cpu, 1) if m.floor_cpu else None,
            ratio_of="orjson floor",
        )
    poll_ratio = m.poll_cpu / m.floor_cpu if m.floor_cpu else float("nan")
    result.add(
        f"  state cycle without /metrics render, {n}",
        ms(m.poll_cpu),
        "ms",
        ratio=round(poll_ratio, 1),
        ratio_of="orjson floor",
        goal=f"< {GOAL_POLL_RATIO:g}x floor",
        met=poll_ratio < GOAL_POLL_RATIO,
    )
    result.add(
        f"  /metrics render as served, {n} ({m.series_on:,} series, {m.render_bytes / 1024:,.0f}"
        " KiB)",
        ms(m.render_cpu),
        "ms",
        goal=f"< {GOAL_RENDER_SECONDS * 1000:g} ms",
        met=m.render_cpu < GOAL_RENDER_SECONDS,
    )
    result.add(
        f"  /metrics by client_python alone (the reference), {n}",
        ms(m.render_ref_cpu),
        "ms",
        ratio=round(m.render_ref_cpu / m.render_cpu, 1) if m.render_cpu else None,
        ratio_of="the served render",
    )
    result.add(
        f"  /metrics with per-agent series off, {n} ({m.series_off:,} series)",
        ms(m.render_off_cpu),
        "ms",
    )
    if m.save_cpu is not None and m.whole_save_cpu is not None:
        result.add(
            f"  engine state save (with a transition, at most every 30 s otherwise), {n}",
            ms(m.save_cpu),
            "ms",
            note=f"written whole: {ms(m.whole_save_cpu):g} ms; hash {m.state_bytes / 1e6:.2f} MB",
        )
    result.add(f"  wall time of the cycle, {n}", ms(m.full_wall), "ms")
    if m.queue_poll_cpu is not None:
        result.add(f"  queue poll CPU ({m.queues} queues, every 15 s)", ms(m.queue_poll_cpu), "ms")


async def run(
    *, sizes: list[tuple[int, int]], cycles: int, repeats: int, redis_url: str, profile: bool = True
) -> BenchResult:
    """`sizes`: (agents, queues) pairs."""
    result = BenchResult("cycle", "Cost per agent-state cycle")
    # no socket timeout (redis-py 8 reads with 5 s by default): on a machine shared with other
    # work, a 10,000-agent schedule write can take longer, and the bench measures CPU, not that
    redis = aioredis.Redis.from_url(redis_url, socket_timeout=None)
    try:
        for agents, queues in sizes:
            sim, tape = await build_tape(agents, queues, cycles)
            m = await measure_cycle(sim, tape, redis, repeats=repeats, profile=profile)
            report_cycle(result, m)
            result.data[str(agents)] = {k: v for k, v in m.__dict__.items() if k != "profile"} | {
                "ratio": m.ratio,
                "profile_top": m.profile,
            }
    finally:
        await redis.aclose()
    result.notes.append(
        "Bodies captured once from the simulator over loopback HTTP, then fed through "
        "PuzzelClient._http (no sockets): envelope + pydantic validation, pollers, tracker, "
        "engine, outbox, engine state to a private redis-server, one /metrics render per cycle. "
        "CPU = time.process_time of this process; medians over every timed cycle."
    )
    return result
