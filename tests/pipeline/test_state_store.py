"""The engine state in a Redis hash: written incrementally, read back exactly, migrated from the
single JSON value of earlier versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.core.clock import VirtualClock
from monitor.core.keys import RedisKeys
from monitor.core.snapshots import AgentObservation, AgentSnapshot
from monitor.core.states import AgentState, StateKind
from monitor.engine.conditions import OpenCondition
from monitor.engine.engine import EngineState, index_schedules
from monitor.engine.lazy import evaluate_agents_lazily
from monitor.engine.memory import AgentMemory, QueueMemory, TeamMemory
from monitor.engine.model import Accrual, RuleName, Segment
from monitor.pipeline.cycle import StaticSchedules, TenantPipeline
from monitor.pipeline.state_store import RedisEngineStateStore
from monitor.rules.loader import ruleset_from_mapping

T0 = datetime(2026, 3, 2, 9, 0, 0, 123457, tzinfo=UTC)
KEYS = RedisKeys("pzm-test")


def _agent(i: int, *, firing: bool = False) -> AgentMemory:
    since = T0 - timedelta(minutes=i, microseconds=i)
    open_ = {}
    if firing:
        open_[RuleName.LONG_PAUSE] = OpenCondition(
            since=since,
            firing=True,
            fired_at=T0,
            fired_ideal_at=T0 - timedelta(seconds=3),
            severity="critical",
            details={"name": f"Agent {i}", "held_for": "5m"},
            labels={"site": "Oslo"},
        )
    return AgentMemory(
        name=f"Agent {i}",
        team=f"Team {i % 3}",
        state=AgentState(StateKind.PAUSE, "Break") if firing else AgentState(StateKind.AVAILABLE),
        since=since,
        accounted_until=T0,
        pause_start=since if firing else None,
        segment=Segment(T0 - timedelta(hours=1), T0 + timedelta(hours=3), str(i), "phone"),
        adherent=not firing,
        adherent_since=since,
        last_closed={RuleName.LONG_WRAP_UP: T0 - timedelta(hours=1)},
        scheduled_seconds=3600.5 + i,
        adherent_seconds=1800.25,
        productive_seconds=0.1 + 0.2,  # not exactly representable: must round-trip exactly
        productive_scheduled_seconds=1e-7,
    )


def _state(n: int = 5) -> EngineState:
    return EngineState(
        tenant="12345",
        ruleset_key="abc",
        agents={str(i): _agent(i, firing=i == 2) for i in range(n)},
        queues={"q1": QueueMemory("Support", {})},
        teams={"Team 0": TeamMemory({1000: (60.0, 30.5)}, {})},
        stale={"user_states": OpenCondition(since=T0)},
    )


def _advance(state: EngineState, seconds: float) -> EngineState:
    """The next cycle of a quiet tenant: every agent's books move on, nothing else changes."""
    new = state.shallow_copy()
    for aid, m in state.agents.items():
        moved = m.copy()
        moved.accounted_until += timedelta(seconds=seconds)
        moved.scheduled_seconds += seconds
        new.agents[aid] = moved
    return new


async def _fields(redis: aioredis.Redis, store: RedisEngineStateStore) -> set[str]:
    return {k.decode() for k in await redis.hkeys(store.key("12345"))}


async def test_a_saved_state_loads_back_exactly(redis_client: aioredis.Redis) -> None:
    state = _state()
    await RedisEngineStateStore(redis_client, key_prefix="pzm-test").save("12345", state)
    loaded = await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345")
    assert loaded is not None
    assert loaded == state
    assert loaded.to_dict() == state.to_dict()
    assert loaded.agents["3"].accounted_until == T0
    assert loaded.agents["3"].productive_seconds == 0.1 + 0.2
    store = RedisEngineStateStore(redis_client, key_prefix="pzm-test")
    assert await _fields(redis_client, store) == {
        "header", "progress", "a:0", "a:1", "a:2", "a:3", "a:4", "q:q1", "t:Team 0"
    }  # fmt: skip
    assert await redis_client.keys("*") == [b"pzm-test:12345:engine:fields"]


async def test_only_what_changed_is_written(redis_client: aioredis.Redis) -> None:
    store = RedisEngineStateStore(redis_client, key_prefix="pzm-test")
    state = _state(100)
    await store.save("12345", state)
    assert len(await _fields(redis_client, store)) == 2 + 100 + 1 + 1  # header, progress, ...

    quiet = _advance(state, 5)
    async with redis_client.pipeline(transaction=True) as pipe:
        staged = store.stage(pipe, "12345", quiet)
        await pipe.execute()
    staged.done()
    assert (staged.fields_written, staged.fields_deleted) == (2, 0)  # header and progress

    changed = quiet.shallow_copy()
    changed.agents["7"] = replace(quiet.agents["7"], state=AgentState(StateKind.WRAP_UP))
    del changed.agents["8"]
    changed.teams["Team 1"] = TeamMemory({1001: (5.0, 5.0)}, {})
    async with redis_client.pipeline(transaction=True) as pipe:
        staged = store.stage(pipe, "12345", changed)
        await pipe.execute()
    staged.done()
    assert (staged.fields_written, staged.fields_deleted) == (4, 1)

    loaded = await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345")
    assert loaded == changed
    assert "a:8" not in await _fields(redis_client, store)


async def test_a_save_that_was_not_executed_is_written_by_the_next(
    redis_client: aioredis.Redis,
) -> None:
    """The baseline moves only with `done()`: a transaction that failed (a lost lease) loses
    nothing that a later save would have skipped as unchanged."""
    store = RedisEngineStateStore(redis_client, key_prefix="pzm-test")
    state = _state()
    await store.save("12345", state)
    changed = state.shallow_copy()
    changed.agents["1"] = replace(state.agents["1"], name="Renamed")
    async with redis_client.pipeline(transaction=True) as pipe:
        store.stage(pipe, "12345", changed)
        await pipe.reset()  # as if a WATCH had failed: nothing was sent
    await store.save("12345", _advance(changed, 5))
    loaded = await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345")
    assert loaded is not None
    assert loaded.agents["1"].name == "Renamed"
    assert loaded == _advance(changed, 5)


async def test_forget_makes_the_next_save_whole(redis_client: aioredis.Redis) -> None:
    """After Redis lost its data, an incremental save would leave out every unchanged agent."""
    store = RedisEngineStateStore(redis_client, key_prefix="pzm-test")
    state = _state()
    await store.save("12345", state)
    await redis_client.flushdb()
    store.forget("12345")
    await store.save("12345", _advance(state, 5))
    loaded = await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345")
    assert loaded == _advance(state, 5)


async def test_the_single_json_value_is_migrated_once(redis_client: aioredis.Redis) -> None:
    state = _state()
    old_key = KEYS.engine_state("12345")
    await redis_client.set(old_key, orjson.dumps(state.to_dict()))
    store = RedisEngineStateStore(redis_client, key_prefix="pzm-test")
    loaded = await store.load("12345")
    assert loaded == state
    assert await redis_client.exists(old_key) == 0
    assert len(await _fields(redis_client, store)) == 2 + 5 + 1 + 1
    again = await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345")
    assert again == state
    # the baseline of a migrated state is what was written: a quiet save writes two fields
    async with redis_client.pipeline(transaction=True) as pipe:
        staged = store.stage(pipe, "12345", _advance(state, 5))
        await pipe.execute()
    assert staged.fields_written == 2


async def test_nothing_saved_loads_as_none(redis_client: aioredis.Redis) -> None:
    assert await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345") is None


async def test_an_agent_with_half_its_fields_is_dropped_and_reported(
    redis_client: aioredis.Redis,
) -> None:
    store = RedisEngineStateStore(redis_client, key_prefix="pzm-test")
    await store.save("12345", _state())
    await redis_client.hdel(store.key("12345"), "a:3")
    with capture_logs() as logs:
        loaded = await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345")
    assert loaded is not None
    assert sorted(loaded.agents) == ["0", "1", "2", "4"]
    (dropped,) = [e for e in logs if e["event"] == "engine_state.agents_dropped"]
    assert (dropped["count"], dropped["agents"]) == (1, ["3"])


async def test_a_field_that_is_not_json_is_named(redis_client: aioredis.Redis) -> None:
    store = RedisEngineStateStore(redis_client, key_prefix="pzm-test")
    await store.save("12345", _state())
    await redis_client.hset(store.key("12345"), "a:1", b"{not json")
    with pytest.raises(ValueError, match=r"pzm-test:12345:engine:fields field 'a:1': not JSON"):
        await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345")


async def test_lazy_agents_resume_exactly_after_a_load(redis_client: aioredis.Redis) -> None:
    """A state with lazy agents (settled in Redis only up to where the history has them) loads
    with the agents to bring up to date; the next evaluation then gives what the state that
    was never saved gives: the same totals, team windows and memories, and the accruals of the
    stretch that was not yet accrued for the history (no second count in the team windows)."""
    rs = ruleset_from_mapping(
        {"team_adherence_below": {"after": "1m", "threshold": 0.5}, "long_pause": {"after": "2m"}}
    )
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    sched = index_schedules(
        {str(i): [Segment(start, start + timedelta(hours=2), str(i), "phone")] for i in range(4)}
    )
    obs = [
        AgentObservation(str(i), f"A{i}", f"T{i % 2}", AgentState(StateKind.AVAILABLE), start)
        for i in range(4)
    ]
    state = EngineState()
    for k in range(12):  # past 09:00:30: the first cycles' lazy agents settle at 09:00:05
        now = start + timedelta(seconds=5 * k + 3)
        state = evaluate_agents_lazily(state, tenant="12345", now=now, agents=obs,
                                       schedules=sched, ruleset=rs).state  # fmt: skip
    assert state.lazy, "the agents should be lazy by now"
    await RedisEngineStateStore(redis_client, key_prefix="pzm-test").save("12345", state)
    loaded = await RedisEngineStateStore(redis_client, key_prefix="pzm-test").load("12345")
    assert loaded is not None
    assert loaded.restored == state.lazy.keys()
    assert loaded.last_accounted() == state.last_accounted()
    later = start + timedelta(seconds=63)
    a = evaluate_agents_lazily(state, tenant="12345", now=later, agents=obs,
                               schedules=sched, ruleset=rs)  # fmt: skip
    b = evaluate_agents_lazily(loaded, tenant="12345", now=later, agents=obs,
                               schedules=sched, ruleset=rs)  # fmt: skip
    assert a.state.totals() == b.state.totals()
    assert a.state.teams == b.state.teams
    assert a.evaluations == b.evaluations
    assert a.transitions == b.transitions
    assert {k: a.state.current(k) for k in a.state.agents} == {
        k: b.state.current(k) for k in b.state.agents
    }
    # the restarted one accrues for the history what the saved memories had not, then this
    # cycle (the one that was never saved keeps them lazy: nothing to accrue yet)
    assert a.accruals == []
    assert state.quiet_until is not None
    until = state.quiet_until
    behind = sum((until - m.accounted_until).total_seconds() for m in loaded.agents.values())
    this_cycle = 4 * (later - until).total_seconds()
    assert behind > 0
    assert sum(acc.scheduled_seconds for acc in b.accruals) == behind + this_cycle


async def test_checkpoint_leaves_lazy_agents_lazy_and_persist_settles_them(
    redis_client: aioredis.Redis,
) -> None:
    """The save a transition triggers (`checkpoint`) writes the state with its lazy agents
    still lazy; `persist` (stop, handover) first brings them up to the latest evaluation and
    tells the history their accruals."""
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    segs = {str(i): [Segment(start, start + timedelta(hours=2), str(i), "phone")] for i in range(3)}
    clock = VirtualClock(start)
    told: list[Accrual] = []

    async def record(accruals: Sequence[Accrual]) -> None:
        told.extend(accruals)

    store = RedisEngineStateStore(redis_client, key_prefix="pzm-test")
    pipeline = TenantPipeline(tenant="12345", ruleset=ruleset_from_mapping({}),
                              schedules=StaticSchedules({"12345": segs}), state_store=store,
                              clock=clock, accrual_observers=[record])  # fmt: skip
    obs = tuple(
        AgentObservation(str(i), f"A{i}", "T", AgentState(StateKind.AVAILABLE), start)
        for i in range(3)
    )
    for k in range(1, 6):
        clock.set(start + timedelta(seconds=5 * k))
        await pipeline.on_agent_cycle("12345", [AgentSnapshot("12345", "T", clock.now(), obs)])
    assert pipeline.state.lazy, "quiet agents should be lazy by now"
    await pipeline.checkpoint()
    assert pipeline.state.lazy
    saved = await store.load("12345")
    assert saved is not None
    assert saved.restored == pipeline.state.lazy.keys()
    told.clear()
    await pipeline.persist()
    assert not pipeline.state.lazy
    assert told, "settling the lazy agents tells the history what they accrued"
    assert {m.accounted_until for m in pipeline.state.agents.values()} == {clock.now()}
    saved = await store.load("12345")
    assert saved is not None
    assert not saved.restored
