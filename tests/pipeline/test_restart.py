"""A monitor killed mid-scenario and restarted on the same Redis neither re-fires nor loses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import redis.asyncio as aioredis

from monitor.simulator.replay import run_replay
from monitor.simulator.scenario import load_scenario
from tests.redis_server import RedisServer

SCENARIOS = Path(__file__).parent.parent / "scenarios"


async def _replay_with_restart(path: Path, server: RedisServer, split: timedelta) -> list[tuple]:
    scenario = load_scenario(path)
    r1 = aioredis.Redis.from_url(server.url)
    await r1.flushdb()
    first = await run_replay(scenario, redis=r1, stop_at=scenario.start + split)
    await r1.aclose()
    # the Redis server itself restarts too (append-only file, fsync always)
    server.restart()
    r2 = aioredis.Redis.from_url(server.url)
    second = await run_replay(scenario, redis=r2)
    await r2.aclose()
    return [(a.rule, a.subject_id, a.status, a.at) for a in first.alerts + second.alerts]


async def test_restart_mid_incident_neither_duplicates_nor_loses(redis_server: RedisServer) -> None:
    """Stopping between the firing and the resolve, then restarting, yields each once."""
    path = SCENARIOS / "break_overrun.yaml"
    uninterrupted = await run_replay(load_scenario(path))
    expected = [(a.rule, a.subject_id, a.status, a.at) for a in uninterrupted.alerts]
    # 07:30 + 2h50m = 10:20:00: both alerts are firing, neither has resolved
    got = await _replay_with_restart(path, redis_server, timedelta(hours=2, minutes=50))
    assert got == expected
    assert sorted(s for _, _, s, _ in got) == ["firing", "firing", "resolved", "resolved"]


async def test_restart_keeps_adherence_counters(redis_server: RedisServer) -> None:
    """Adherence after a restart equals adherence of an uninterrupted run."""
    path = SCENARIOS / "break_overrun.yaml"
    scenario = load_scenario(path)
    uninterrupted = await run_replay(scenario)
    r = aioredis.Redis.from_url(redis_server.url)
    await r.flushdb()
    await run_replay(scenario, redis=r, stop_at=scenario.start + timedelta(hours=2, minutes=40))
    resumed = await run_replay(scenario, redis=r)
    await r.aclose()
    assert [(x.agent, round(x.adherence, 4)) for x in resumed.adherence] == [
        (x.agent, round(x.adherence, 4)) for x in uninterrupted.adherence
    ]
