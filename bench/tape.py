"""Capture the simulator's answers once, then replay them to the monitor without the network.

`capture(...)` runs the real client and pollers against the simulator over loopback HTTP on a
virtual clock, recording every response body (a `Tape`). `ReplayTenant` builds the real client
(`monitor.app.service.make_client`), pollers, tracker and pipeline on a fresh virtual clock,
with the client's one HTTP seam (`PuzzelClient._http`) answering from the tape: everything above
the socket runs as in production (envelope, pydantic validation, stats, rate limiter, tracker,
engine, outbox, Redis state) but the HTTP stack and the simulator's cost of generating the
answers are not in the measurement."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import redis.asyncio as aioredis

from bench.common import BENCH_START, QUEUE_CADENCE, STATE_CADENCE, SimServer, tenant_config
from monitor.alerts.outbox import Outbox
from monitor.app.config import TenantConfig
from monitor.app.service import tenant_pollers
from monitor.app.wiring import tenant_pipeline
from monitor.core.clock import VirtualClock
from monitor.engine.engine import EngineState
from monitor.engine.model import RuleSet
from monitor.ingest.pollers import LatestSnapshots
from monitor.ingest.tracker import StateTracker
from monitor.pipeline.cycle import TenantPipeline
from monitor.pipeline.state_store import RedisEngineStateStore
from monitor.puzzel.client import PuzzelClient
from monitor.rules.loader import default_ruleset
from monitor.schedules.store import ScheduleStore
from monitor.simulator.simulator import Simulator

Key = tuple[str, str, tuple[tuple[str, str], ...]]
_MISSING = orjson.dumps({"result": None, "code": 404, "id": "tape", "message": "not on tape"})


def _key(req: Any, customer_key: str) -> Key:
    """The request's identity independent of the server's address and the tenant's key, so one
    capture can feed several tenants."""
    path = urlsplit(req.url).path.replace(f"/{customer_key}/", "/{customerKey}/")
    params = tuple(sorted((str(k), str(v)) for k, v in dict(req.params or {}).items()))
    return (req.ep.name, path, params)


@dataclass
class Tape:
    """Response bodies in the order they were served, per request, and per state cycle."""

    bodies: dict[Key, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    # (endpoint name, body) served during each state cycle; cycle 0 is the warm-up
    cycles: list[list[tuple[str, bytes]]] = field(default_factory=list)
    queue_bodies: list[bytes] = field(default_factory=list)
    agents: int = 0
    groups: int = 0
    queues: int = 0

    def record(self, key: Key, body: bytes) -> None:
        self.bodies[key].append(body)
        if self.cycles and key[0] != "visual_queue_state_information":
            self.cycles[-1].append((key[0], body))
        if key[0] == "visual_queue_state_information":
            self.queue_bodies.append(body)

    @property
    def timed_cycles(self) -> int:
        return max(0, len(self.cycles) - 1)

    def cycle_bytes(self, i: int) -> int:
        return sum(len(b) for _, b in self.cycles[i])


class Player:
    """Serves a tape's bodies in order, per request key; a request not on the tape gets an
    envelope error (the pollers treat it like Puzzel refusing one per-user call)."""

    def __init__(self, tape: Tape, customer_key: str) -> None:
        self.tape = tape
        self.customer_key = customer_key
        self.cursor: dict[Key, int] = defaultdict(int)
        self.misses = 0
        self.served: list[tuple[str, bytes]] = []

    async def http(
        self, req: Any, headers: Mapping[str, str], limit_seconds: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        key = _key(req, self.customer_key)
        bodies = self.tape.bodies.get(key)
        if not bodies:
            self.misses += 1
            return 404, {}, _MISSING
        i = self.cursor[key]
        self.cursor[key] = i + 1
        body = bodies[min(i, len(bodies) - 1)]  # lists fetched once an hour repeat the last one
        self.served.append((req.ep.name, body))
        return 200, {}, body


def _install_http(client: PuzzelClient, http: Any) -> None:
    # the client's single network seam; replacing it on the instance keeps make_client's wiring
    client._http = http  # type: ignore[method-assign]  # bench-only seam replacement


async def capture(
    sim: Simulator,
    clock: VirtualClock,
    *,
    cycles: int,
    with_queues: bool = True,
) -> Tape:
    """Poll `sim` over loopback HTTP: one warm-up cycle, then `cycles` state cycles 5 s apart
    (and a queue poll every 15 s), recording every body."""
    tape = Tape()
    async with SimServer(sim) as server, aiohttp.ClientSession() as session:
        cfg = tenant_config(sim, server.base, queues=QUEUE_CADENCE if with_queues else None)
        client, pollers = tenant_pollers(cfg, session=session, clock=clock, store=LatestSnapshots())
        real_http = client._http

        async def recording_http(
            req: Any, headers: dict[str, str], limit_seconds: float
        ) -> tuple[int, Mapping[str, str], bytes]:
            status, resp_headers, body = await real_http(req, headers, limit_seconds)
            if status == 200:
                tape.record(_key(req, cfg.customer_key), body)
            return status, resp_headers, body

        _install_http(client, recording_http)
        for c in range(cycles + 1):
            if c:
                clock.advance(STATE_CADENCE)
            tape.cycles.append([])
            await pollers.run_poll("user_states", pollers.poll_user_states)
            if with_queues and c % round(QUEUE_CADENCE / STATE_CADENCE) == 0:
                await pollers.run_poll("queues", pollers.poll_queues)
        tape.agents = len(pollers.tracker)
        tape.groups = len(await pollers.watched_groups())
    tape.queues = len(sim.centre.visual_queues())
    return tape


@dataclass
class StageClock:
    """Seconds of CPU spent in each instrumented stage."""

    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def reset(self) -> dict[str, float]:
        out = dict(self.cpu)
        self.cpu.clear()
        return out


class TimedTracker(StateTracker):
    """The real tracker, with its CPU time added to a `StageClock`."""

    def __init__(self, tenant: str, stages: StageClock) -> None:
        super().__init__(tenant)
        self._stages = stages

    def observe_cycle(self, polls: Any) -> Any:
        t0 = time.process_time()
        try:
            return super().observe_cycle(polls)
        finally:
            self._stages.cpu["tracker"] += time.process_time() - t0

    def snapshot(self, team: str, taken_at: Any = None) -> Any:
        t0 = time.process_time()
        try:
            return super().snapshot(team, taken_at)
        finally:
            self._stages.cpu["tracker"] += time.process_time() - t0


class TimedStateStore(RedisEngineStateStore):
    """The real Redis engine-state store, timing what it writes and the MULTI (CPU and wall)."""

    def __init__(self, redis: aioredis.Redis, stages: StageClock, **kw: Any) -> None:
        super().__init__(redis, **kw)
        self._stages = stages

    async def save(self, tenant: str, state: EngineState) -> None:
        t0, w0 = time.process_time(), time.perf_counter()
        await super().save(tenant, state)
        self._stages.cpu["redis_write"] += time.process_time() - t0
        self._stages.cpu["redis_write_wall"] += time.perf_counter() - w0


class TimedPipeline(TenantPipeline):
    """The real pipeline; its whole `on_agent_cycle` is timed (engine + outbox + state save)."""

    def __init__(self, stages: StageClock, **kw: Any) -> None:
        super().__init__(**kw)
        self._stages = stages

    async def on_agent_cycle(self, tenant: str, snapshots: Any) -> None:
        t0 = time.process_time()
        try:
            await super().on_agent_cycle(tenant, snapshots)
        finally:
            self._stages.cpu["pipeline"] += time.process_time() - t0


class ReplayTenant:
    """One tenant of the monitor fed from a tape: client, pollers, tracker, pipeline, Redis."""

    def __init__(
        self,
        tape: Tape,
        sim: Simulator,
        redis: aioredis.Redis,
        session: aiohttp.ClientSession,
        *,
        customer_key: str | None = None,
        ruleset: RuleSet | None = None,
        store: LatestSnapshots | None = None,
        instrument: bool = True,
    ) -> None:
        self.tape = tape
        self.clock = VirtualClock(BENCH_START)
        self.stages = StageClock()
        self.cfg: TenantConfig = tenant_config(sim, "http://127.0.0.1:9", customer_key=customer_key)
        self.tenant = self.cfg.customer_key
        self.store = store if store is not None else LatestSnapshots()
        tracker = TimedTracker(self.tenant, self.stages) if instrument else None
        self.client, self.pollers = tenant_pollers(
            self.cfg, session=session, clock=self.clock, store=self.store, tracker=tracker
        )
        self.player = Player(tape, self.tenant)
        _install_http(self.client, self.player.http)
        if instrument:
            self._instrument_client()
        prefix = f"pzm-bench-{self.tenant}"
        self.redis = redis
        self.schedules = ScheduleStore(redis, key_prefix=prefix)
        self.state_store = TimedStateStore(redis, self.stages, key_prefix=prefix)
        self.outbox = Outbox(redis, sinks=["webhook"], clock=self.clock, key_prefix=prefix)
        self.pipeline: TenantPipeline = tenant_pipeline(
            self.tenant,
            redis=redis,
            ruleset=ruleset or default_ruleset(),
            clock=self.clock,
            publisher=self.outbox,
            schedules=self.schedules,
            state_store=self.state_store,
            make=partial(TimedPipeline, self.stages) if instrument else TenantPipeline,
        )
        self.pollers.sink = self.pipeline
        if tracker is not None:
            # TenantPollers does `tracker or StateTracker(...)`; an empty tracker is falsy (len 0)
            self.pollers.tracker = tracker
        self.cycle = 0

    def _instrument_client(self) -> None:
        """Time the client's four parse steps (envelope, raw split, validation of one answer
        and of list rows) as the `client_parse` stage."""
        stages = self.stages

        def timed(real: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                t0 = time.process_time()
                try:
                    return real(*args, **kwargs)
                finally:
                    stages.cpu["client_parse"] += time.process_time() - t0

            return call

        client = self.client
        client._unwrap = timed(client._unwrap)  # type: ignore[method-assign]  # bench instrumentation
        client._unwrap_rows = timed(client._unwrap_rows)  # type: ignore[method-assign]  # bench instrumentation
        client._parse = timed(client._parse)  # type: ignore[method-assign]  # bench instrumentation
        client._parse_rows = timed(client._parse_rows)  # type: ignore[method-assign]  # bench instrumentation

    async def load_schedules(self, sim: Simulator) -> int:
        segments = sim.schedules()
        await self.schedules.replace(self.tenant, sim.timezone, segments)
        return len(segments)

    async def start(self) -> None:
        await self.outbox.ensure_groups()
        await self.pipeline.start()

    async def state_cycle(self) -> None:
        """One agent-state cycle, as the scheduler would run it, 5 s after the previous one."""
        if self.cycle:
            self.clock.advance(STATE_CADENCE)
        self.cycle += 1
        self.player.served.clear()
        await self.pollers.run_poll("user_states", self.pollers.poll_user_states)

    async def queue_poll(self) -> None:
        await self.pollers.run_poll("queues", self.pollers.poll_queues)


def advance_sim(sim: Simulator, clock: VirtualClock, seconds: float) -> None:
    clock.advance(seconds)
    sim.advance_to()


def at(seconds: float) -> Any:
    return BENCH_START + timedelta(seconds=seconds)
