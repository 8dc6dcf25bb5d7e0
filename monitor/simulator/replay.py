"""`puzzel-monitor replay FILE [--json] [--check] [--redis-url URL]`: a scenario through the
whole pipeline in virtual time (../shared/scenario-format.md is the contract).

The scenario is served by the simulator's scripted mode over real HTTP on loopback; the real
client and pollers read it, the engine evaluates, transitions go to the alert outbox, and the
schedules, the engine's memory and the outbox sit in Redis (an embedded in-memory store, or a
real one with `--redis-url`). Only the clock is virtual.

Polls happen on the scenario's cadence grid (`start + k * cadence`), but a poll that could not
change what the monitor concludes is skipped: the next poll is the first grid time at or after
the next scenario change that the rules can tell apart (a state whose signature differs, a queue
field, a schedule boundary) or the engine's next deadline (`next_due`). The alerts and
adherence are the same as with a poll every cycle; a day just takes seconds instead of minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import aiohttp
import orjson
import redis.asyncio as aioredis
import structlog
from aiohttp import web

from monitor.alerts.outbox import Outbox
from monitor.app.config import CadencesConfig, RateLimitConfig, RedisConfig, TenantConfig
from monitor.app.gc_tuning import tune_gc
from monitor.app.logging import configure_logging
from monitor.app.redis_client import redis_client
from monitor.app.service import tenant_pollers
from monitor.app.wiring import tenant_pipeline
from monitor.core.clock import VirtualClock
from monitor.core.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_RUNTIME
from monitor.core.states import LOGGED_OFF, AgentState, StateKind
from monitor.engine.engine import next_due
from monitor.engine.model import AlertTransition, RuleSet
from monitor.history.store import HistoryStore
from monitor.ingest.pollers import LatestSnapshots, TenantPollers
from monitor.pipeline.cycle import TenantPipeline
from monitor.rules.loader import RulesError, ruleset_from_mapping
from monitor.schedules.store import ScheduleStore
from monitor.simulator.app import create_app, tenant_settings
from monitor.simulator.scenario import Scenario, ScenarioError, load_scenario
from monitor.simulator.simulator import Simulator

log = structlog.get_logger(__name__)

TOLERANCE_RATIO = 0.005
QUARTER_HOUR = 900  # seconds; queue polls at these bounds close the interval statistics


@dataclass
class ReplayedAlert:
    """A transition as replay reports it (not `monitor.alerts.store.AlertRecord`, the record of a
    delivered alert)."""

    rule: str
    subject: str  # "agent" | "queue" | ...
    subject_id: str
    status: str
    at: datetime
    ideal_at: datetime


@dataclass
class AdherenceRecord:
    agent: str
    adherence: float
    conformance: float | None
    scheduled_seconds: float


@dataclass
class ReplayResult:
    scenario: Scenario
    alerts: list[ReplayedAlert] = field(default_factory=list)
    adherence: list[AdherenceRecord] = field(default_factory=list)
    polls: int = 0
    requests: int = 0
    requests_by_endpoint: dict[str, int] = field(default_factory=dict)
    # the live parts as the run left them, for what reads a monitor's state (the MCP tests)
    pipeline: TenantPipeline | None = None
    pollers: TenantPollers | None = None
    latest: LatestSnapshots | None = None


def _grid_ceil(t: datetime, origin: datetime, step: float) -> datetime:
    k = math.ceil((t - origin).total_seconds() / step - 1e-9)
    return origin + timedelta(seconds=max(k, 0) * step)


def _signature(state: AgentState, ruleset: RuleSet) -> tuple[object, ...]:
    """What the engine can tell apart about a state: which activities allow it, and the kinds
    and pause types that rules single out. Changes between states with equal signatures
    (available -> connecting -> connected, say) cannot alter an alert or an accrual."""
    allowed = tuple(a.allows(state) for a in ruleset.activities.values())
    kind = state.kind if state.kind in _SINGLED_OUT else None
    return allowed, kind, state.pause_type


_SINGLED_OUT = frozenset(
    {StateKind.LOGGED_OFF, StateKind.PAUSE, StateKind.WRAP_UP, StateKind.UNKNOWN}
)


def _change_times(scenario: Scenario, ruleset: RuleSet) -> tuple[list[datetime], list[datetime]]:
    """The instants at which what the monitor would conclude can change."""
    agent_times: set[datetime] = set()
    for agent in scenario.agents:
        previous = _signature(LOGGED_OFF, ruleset)
        for t, state in agent.states:
            signature = _signature(state, ruleset)
            if signature != previous:
                agent_times.add(t)
            previous = signature
        for seg in agent.segments:
            agent_times.update((seg.start, seg.end))
    queue_times = {t for q in scenario.queues for t, _ in q.states}
    if scenario.queues:
        # a poll at every interval bound closes the queues' interval statistics as the running
        # monitor's 15-second polls would (the history's widths all divide an hour)
        first = scenario.start.timestamp() // QUARTER_HOUR * QUARTER_HOUR + QUARTER_HOUR
        bound = datetime.fromtimestamp(first, UTC)
        while bound <= scenario.end:
            queue_times.add(bound)
            bound += timedelta(seconds=QUARTER_HOUR)
    return sorted(agent_times), sorted(queue_times)


def _next_after(times: Sequence[datetime], t: datetime) -> datetime | None:
    i = bisect.bisect_right(times, t)
    return times[i] if i < len(times) else None


async def run_replay(
    scenario: Scenario,
    *,
    redis: aioredis.Redis | None = None,
    key_prefix: str = "pzm-replay",
    stop_at: datetime | None = None,
    profile: str = "full",
    history_prefix: str = "pzm",
) -> ReplayResult:
    """Replay `scenario` and return what the monitor concluded.

    `redis` defaults to an embedded in-memory store; `stop_at` ends the run early (used by the
    restart test, which then replays the rest with a fresh monitor on the same Redis);
    `profile` is the simulator's (`public`: only the shapes public evidence shows).
    With a `redis` of the caller's, the adherence history goes under `history_prefix` (the
    monitor's own by default, so that `report adherence` reads a replayed day; its watermarks
    keep a second replay from adding the same day twice); the embedded store writes none.
    """
    own_redis = redis is None
    if redis is None:
        import fakeredis  # noqa: PLC0415 - only the embedded store needs it

        redis = fakeredis.FakeAsyncRedis()
    clock = VirtualClock(scenario.start)
    sim = Simulator.from_scenario(scenario, clock=clock, profile=profile)
    runner, base = await _serve(sim, clock)
    tenant = scenario.customer_key
    tenant_cfg = _tenant_config(scenario, sim, base)
    ruleset = ruleset_from_mapping(
        scenario.rules, scenario.activities, only_listed=True, source=scenario.source
    )
    await _load_schedules(scenario, ScheduleStore(redis, key_prefix=key_prefix))
    result = ReplayResult(scenario)

    async def record(transitions: Sequence[AlertTransition]) -> None:
        for t in transitions:
            result.alerts.append(
                ReplayedAlert(t.rule.value, t.subject, t.subject_id, t.status, t.at, t.ideal_at)
            )

    outbox = Outbox(redis, sinks=["replay"], clock=clock, key_prefix=key_prefix)
    pipeline = tenant_pipeline(
        tenant,
        redis=redis,
        ruleset=ruleset,
        clock=clock,
        publisher=outbox,
        observers=[record],
        key_prefix=key_prefix,
        # the embedded store is gone at exit: records are written only to a Redis of the caller's
        history=None
        if own_redis
        else HistoryStore(
            redis, tenants={tenant: scenario.timezone}, clock=clock, key_prefix=history_prefix
        ),
        # saved with every transition regardless; a longer idle interval keeps a day quick
        persist_interval=timedelta(minutes=5),
    )
    await pipeline.start()
    end = scenario.end if stop_at is None else min(stop_at, scenario.end)
    try:
        async with aiohttp.ClientSession() as session:
            latest = LatestSnapshots()
            _, pollers = tenant_pollers(
                tenant_cfg, session=session, clock=clock, store=latest, sink=pipeline
            )
            result.pipeline, result.pollers, result.latest = pipeline, pollers, latest
            result.polls = await _drive(
                scenario, pollers, pipeline, ruleset=ruleset, clock=clock, end=end
            )
            clock.set(end)
            if stop_at is None or stop_at >= scenario.end:
                await pipeline.close_books(end)
                result.adherence = _adherence(pipeline, scenario)
            result.requests = len(sim.requests)
            result.requests_by_endpoint = dict(Counter(str(r.endpoint) for r in sim.requests))
    finally:
        await runner.cleanup()
        if own_redis:
            await redis.aclose()
    result.alerts.sort(key=lambda a: a.at)
    return result


async def _serve(sim: Simulator, clock: VirtualClock) -> tuple[web.AppRunner, str]:
    """The simulator over real HTTP on a free loopback port: its runner and base URL."""
    runner = web.AppRunner(create_app(sim, clock=clock), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def _load_schedules(scenario: Scenario, schedules: ScheduleStore) -> None:
    """The scenario's schedules, unless a restarted replay finds them stored already."""
    tenant = scenario.customer_key
    if await schedules.version(tenant) == 0:
        segments = [s for a in scenario.agents for s in a.segments]
        await schedules.replace(
            tenant, scenario.timezone, segments, agents={a.id for a in scenario.agents}
        )


def _tenant_config(scenario: Scenario, sim: Simulator, base: str) -> TenantConfig:
    """How the replayed monitor reaches the simulator, polling only what the scenario plays."""
    return TenantConfig.model_validate(
        {
            **tenant_settings(sim, base),
            "user_groups": "all",
            "visual_queues": "all",
            "cadences": CadencesConfig(
                user_states=scenario.cadence_user_states.total_seconds(),
                queues=scenario.cadence_queues.total_seconds() if scenario.queues else None,
                agent_stats=None,
                queue_ticker=None,
                access_points=None,
                jitter=0,
            ),
            "user_state_budget": max(10, len(scenario.agents)),
            # with no pause types endpoint, the names an operator would configure
            "pause_types": {str(i): name for name, i in sim.centre.pause_types().items()},
            # the virtual clock does not move while a poll runs, so a real rate would stall it
            "rate_limit": RateLimitConfig(requests_per_second=1e6, burst=1_000_000),
        }
    )


async def _drive(
    scenario: Scenario,
    pollers: TenantPollers,
    pipeline: TenantPipeline,
    *,
    ruleset: RuleSet,
    clock: VirtualClock,
    end: datetime,
) -> int:
    """Poll on the scenario's cadence grid, skipping the polls that cannot change anything;
    returns the number of polls."""
    c_agents = scenario.cadence_user_states.total_seconds()
    c_queues = scenario.cadence_queues.total_seconds()
    agent_times, queue_times = _change_times(scenario, ruleset)
    # A restarted monitor resumes from where its engine state says it stopped.
    start = pipeline.last_evaluated() or scenario.start
    next_agents: datetime | None = _grid_ceil(start, scenario.start, c_agents)
    if next_agents == start and pipeline.last_evaluated() is not None:
        next_agents = start + timedelta(seconds=c_agents)
    next_queues = _grid_ceil(start, scenario.start, c_queues) if scenario.queues else None
    polls = 0
    while True:
        due = [t for t in (next_agents, next_queues) if t is not None]
        if not due or min(due) > end:
            return polls
        now = min(due)
        clock.set(now)
        if now == next_agents:
            await pollers.run_poll("user_states", pollers.poll_user_states)
            polls += 1
        if now == next_queues:
            await pollers.run_poll("queues", pollers.poll_queues)
            polls += 1
        schedules_now = await pipeline.schedules_at(now)
        wake = next_due(
            pipeline.state,
            now=now,
            schedules=schedules_now,
            ruleset=ruleset,
            approvals=await pipeline.approvals_at(now),
        )
        # a poll that did not run keeps its date unless something new brings it closer
        next_agents = _sooner(
            None if now == next_agents else next_agents,
            _next_poll(now, scenario.start, c_agents, agent_times, wake),
        )
        if scenario.queues:
            next_queues = _sooner(
                None if now == next_queues else next_queues,
                _next_poll(now, scenario.start, c_queues, queue_times, wake),
            )


def _next_poll(
    now: datetime,
    origin: datetime,
    step: float,
    changes: Sequence[datetime],
    wake: datetime | None,
) -> datetime | None:
    candidates: list[datetime] = []
    change = _next_after(changes, now)
    if change is not None:
        candidates.append(_grid_ceil(change, origin, step))
    if wake is not None:
        candidates.append(_grid_ceil(max(wake, now + timedelta(seconds=step)), origin, step))
    return min(candidates) if candidates else None


def _sooner(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _adherence(pipeline: TenantPipeline, scenario: Scenario) -> list[AdherenceRecord]:
    totals = {a.agent_id: a for a in pipeline.accrued(pipeline.tenant)}
    out: list[AdherenceRecord] = []
    for agent in scenario.agents:
        acc = totals.get(agent.id)
        if acc is None or acc.scheduled_seconds <= 0:
            continue
        conformance = (
            acc.productive_seconds / acc.productive_scheduled_seconds
            if acc.productive_scheduled_seconds > 0
            else None
        )
        out.append(
            AdherenceRecord(
                agent.id,
                acc.adherent_seconds / acc.scheduled_seconds,
                conformance,
                acc.scheduled_seconds,
            )
        )
    return out


# --- output ---------------------------------------------------------------------------------


def _iso(t: datetime, scenario: Scenario) -> str:
    return t.astimezone(scenario.timezone).isoformat()


def json_lines(result: ReplayResult) -> list[str]:
    lines: list[str] = []
    for a in result.alerts:
        row: dict[str, Any] = {"event": "alert", "status": a.status, "rule": a.rule}
        row[a.subject] = a.subject_id
        row["at"] = _iso(a.at, result.scenario)
        row["ideal_at"] = _iso(a.ideal_at, result.scenario)
        lines.append(orjson.dumps(row).decode())
    for r in result.adherence:
        lines.append(
            orjson.dumps(
                {
                    "event": "adherence",
                    "agent": r.agent,
                    "adherence": round(r.adherence, 4),
                    "conformance": None if r.conformance is None else round(r.conformance, 4),
                    "scheduled_seconds": round(r.scheduled_seconds),
                }
            ).decode()
        )
    return lines


def human_lines(result: ReplayResult) -> list[str]:
    sc = result.scenario
    names = {a.id: a.name for a in sc.agents}
    lines = [f"{sc.name}  ({_iso(sc.start, sc)} → {_iso(sc.end, sc)})"]
    for a in result.alerts:
        local = a.at.astimezone(sc.timezone).strftime("%H:%M:%S")
        who = f"{a.subject} {a.subject_id}"
        if a.subject == "agent" and a.subject_id in names:
            who += f" ({names[a.subject_id]})"
        lines.append(f"  {local}  {a.status.upper():8} {a.rule:22} {who}")
    if not result.alerts:
        lines.append("  no alerts")
    for r in result.adherence:
        conf = "n/a" if r.conformance is None else f"{r.conformance:.2%}"
        lines.append(
            f"  agent {r.agent}: adherence {r.adherence:.2%}, conformance {conf}, "
            f"scheduled {r.scheduled_seconds / 3600:.2f} h"
        )
    lines.append(f"  ({result.polls} polls, {result.requests} requests to the simulator)")
    return lines


# --- check ----------------------------------------------------------------------------------


def check(result: ReplayResult) -> list[str]:
    """Differences between what the monitor concluded and the scenario's `expect` block."""
    expect = result.scenario.expect
    if expect is None:
        return ["the scenario has no expect block"]
    return _check_alerts(result) + _check_adherence(result)


def _check_alerts(result: ReplayResult) -> list[str]:
    sc = result.scenario
    assert sc.expect is not None
    slack = timedelta(seconds=1)
    problems: list[str] = []
    firings = [a for a in result.alerts if a.status == "firing"]
    resolves = [a for a in result.alerts if a.status == "resolved"]
    used: set[int] = set()
    for exp in sorted(sc.expect.alerts, key=lambda e: e.at):
        subject, sid = ("queue", exp.queue) if exp.queue is not None else ("agent", exp.agent)
        cadence = sc.cadence_queues if subject == "queue" else sc.cadence_user_states
        what = f"{exp.rule} for {subject} {sid}"
        window_end = exp.at + cadence + slack
        mine = [
            (i, a)
            for i, a in enumerate(firings)
            if a.rule == exp.rule and a.subject == subject and a.subject_id == sid
        ]
        match = next((i for i, a in mine if i not in used and exp.at <= a.at <= window_end), None)
        if match is None:
            seen = [_iso(a.at, sc) for _, a in mine]
            problems.append(
                f"expected {what} to fire in [{_iso(exp.at, sc)}, {_iso(window_end, sc)}]; "
                + (f"it fired at {', '.join(seen)}" if seen else "it never fired")
            )
            continue
        used.add(match)
        fired = firings[match]
        resolve = next(
            (
                r
                for r in resolves
                if r.rule == fired.rule
                and r.subject == subject
                and r.subject_id == sid
                and r.at >= fired.at
            ),
            None,
        )
        problem = _check_resolve(what, exp.resolved, resolve, cadence + slack, sc)
        if problem:
            problems.append(problem)
    problems += [
        f"unexpected alert: {a.rule} for {a.subject} {a.subject_id} fired at {_iso(a.at, sc)}"
        for i, a in enumerate(firings)
        if i not in used
    ]
    return problems


def _check_resolve(
    what: str,
    expected: datetime | None,
    resolve: ReplayedAlert | None,
    window: timedelta,
    sc: Scenario,
) -> str | None:
    if expected is None:
        if resolve is None:
            return None
        return (
            f"expected {what} to be still firing at the end; it resolved at {_iso(resolve.at, sc)}"
        )
    r_end = expected + window
    if resolve is None:
        return (
            f"expected {what} to resolve in [{_iso(expected, sc)}, {_iso(r_end, sc)}]; "
            "it never resolved"
        )
    if not expected <= resolve.at <= r_end:
        return (
            f"expected {what} to resolve in [{_iso(expected, sc)}, {_iso(r_end, sc)}]; "
            f"it resolved at {_iso(resolve.at, sc)}"
        )
    return None


def _check_adherence(result: ReplayResult) -> list[str]:
    sc = result.scenario
    assert sc.expect is not None
    problems: list[str] = []
    got = {r.agent: r for r in result.adherence}
    for agent, exp_adh in sc.expect.adherence.items():
        actual = got.get(agent)
        if actual is None:
            problems.append(f"expected adherence for agent {agent}; it had no scheduled time")
            continue
        if abs(actual.adherence - exp_adh.adherence) > TOLERANCE_RATIO:
            problems.append(
                f"agent {agent}: adherence {actual.adherence:.4f}, expected "
                f"{exp_adh.adherence:.4f} (±{TOLERANCE_RATIO})"
            )
        if exp_adh.conformance is not None and (
            actual.conformance is None
            or abs(actual.conformance - exp_adh.conformance) > TOLERANCE_RATIO
        ):
            shown = "n/a" if actual.conformance is None else f"{actual.conformance:.4f}"
            problems.append(
                f"agent {agent}: conformance {shown}, expected {exp_adh.conformance:.4f} "
                f"(±{TOLERANCE_RATIO})"
            )
    return problems


# --- command --------------------------------------------------------------------------------


async def _replay_cli(scenario: Scenario, redis_url: str | None) -> ReplayResult:
    if redis_url is None:
        return await run_replay(scenario)
    redis = redis_client(RedisConfig(), url=redis_url, retry=False)
    try:
        # a fresh replay: nothing left from an earlier one may be resumed
        keys = [k async for k in redis.scan_iter(match="pzm-replay:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        return await run_replay(scenario, redis=redis)
    finally:
        await redis.aclose()


def replay_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    # replay's stdout is its result; only warnings (or debug, when asked for) go to stderr
    level = "debug" if getattr(args, "log_level", "") == "debug" else "warning"
    configure_logging(level, "console")
    try:
        scenario = load_scenario(args.file)
        # validate the rules before anything starts, so a bad scenario exits 2 cleanly
        ruleset_from_mapping(
            scenario.rules, scenario.activities, only_listed=True, source=scenario.source
        )
    except (ScenarioError, RulesError, OSError) as exc:
        print(f"puzzel-monitor replay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    tune_gc()  # as `run` does: a day replays thousands of cycles
    try:
        result = asyncio.run(_replay_cli(scenario, getattr(args, "redis_url", None)))
    except (aioredis.ConnectionError, OSError) as exc:
        print(f"puzzel-monitor replay: cannot reach Redis: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    lines = json_lines(result) if args.json else human_lines(result)
    for line in lines:
        print(line, file=out)
    if args.check:
        problems = check(result)
        stream = sys.stderr if args.json else out
        if problems:
            print(f"CHECK FAILED: {len(problems)} difference(s)", file=stream)
            for p in problems:
                print(f"  - {p}", file=stream)
            return EXIT_FAILED
        if not args.json:
            print("check passed", file=out)
    return EXIT_OK
