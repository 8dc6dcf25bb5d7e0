"""Persistence of the engine's memory in Redis, so a restart neither re-fires open alerts nor
resets state durations and adherence counters.

Layout: one hash per tenant, `{prefix}:{tenant}:engine:fields` (`RedisKeys.engine_fields`):

- `header`: version, tenant, rule-set key and the staleness conditions
  (`EngineState.header_to_dict`);
- `progress`: `{agent: [accounted_until in µs since the epoch, 4 totals]}` for every agent:
  every agent advances these every cycle, so they go together in one field;
- `a:{agent}`: the rest of an agent's memory (`AgentMemory.body_to_dict`), which changes only
  with the agent's state: written for the agents whose body changed since the last save;
- `t:{team}`, `q:{queue}`: team and queue memories, written when they changed;

and members that left the state are deleted. Header and progress are written with every save;
the rest when it changed. One save is one MULTI, so Redis never holds half of one. What changed
is judged against what this store last wrote or read for the tenant (the engine replaces members
of its state rather than mutating them, so an unchanged member is the same object): a process
that writes a tenant without having loaded it first writes all of it, and `forget(tenant)` makes
the next save whole (after Redis lost its data). A hash with an agent's body but no progress
(or the reverse) cannot come from one save: `load` drops that agent, logs and counts it, and
the engine meets it anew.

The seam for guarded writes (a lease, a fencing token): `stage(pipe, tenant, state)` queues the
commands of one save on a redis-py pipeline the caller owns and returns a `StagedSave`; once the
caller has executed the pipeline successfully it calls `staged.done()`, which makes what was
written the store's new baseline. `save` is exactly that on a fresh MULTI. A guarded caller does

    async with redis.pipeline(transaction=True) as pipe:
        await pipe.watch(lease_key)          # and checks its token
        pipe.multi()
        staged = store.stage(pipe, tenant, state)
        await pipe.execute()                 # WatchError: nothing was written
    staged.done()

A save that was not executed (or failed) leaves the baseline as it was, so the next save writes
those members again: nothing is lost by a failed write.

Migration: before this layout the state was one JSON document under `{prefix}:{tenant}:engine`
(`RedisKeys.engine_state`). `load` reads it when the hash is absent, then writes the hash and
deletes the old key in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
import structlog
from redis.asyncio.client import Pipeline

from monitor.core.keys import RedisKeys
from monitor.engine.engine import EngineState
from monitor.engine.memory import AgentMemory, QueueMemory, TeamMemory

HEADER = "header"
PROGRESS = "progress"
AGENT, TEAM, QUEUE = "a:", "t:", "q:"

log = structlog.get_logger(__name__)


class EngineStateStore(Protocol):
    async def load(self, tenant: str) -> EngineState | None: ...

    async def save(self, tenant: str, state: EngineState) -> None: ...

    def forget(self, tenant: str) -> None:
        """Make the next save of `tenant` write all of its state (Redis lost its data)."""


@dataclass
class _Baseline:
    """What the hash holds for one tenant, as the objects it was written (or read) from."""

    agents: dict[str, AgentMemory] = field(default_factory=dict)
    teams: dict[str, TeamMemory] = field(default_factory=dict)
    queues: dict[str, QueueMemory] = field(default_factory=dict)

    @classmethod
    def of(cls, state: EngineState) -> _Baseline:
        return cls(dict(state.agents), dict(state.teams), dict(state.queues))


@dataclass
class StagedSave:
    """One save queued on a pipeline: call `done()` once that pipeline has been executed."""

    fields_written: int
    fields_deleted: int
    _done: Callable[[], None]

    def done(self) -> None:
        self._done()


class RedisEngineStateStore:
    """The engine state of each tenant in one Redis hash, written incrementally."""

    def __init__(self, redis: aioredis.Redis, *, key_prefix: str = "pzm") -> None:
        self._redis = redis
        self._keys = RedisKeys(key_prefix)
        self._baselines: dict[str, _Baseline] = {}

    def key(self, tenant: str) -> str:
        return self._keys.engine_fields(tenant)

    def keys(self, tenant: str) -> list[str]:
        """Every key this store reads or writes for `tenant` (the hash, the pre-hash key)."""
        return [self.key(tenant), self._keys.engine_state(tenant)]

    async def load(self, tenant: str) -> EngineState | None:
        raw = await self._redis.hgetall(self.key(tenant))
        state = _assemble(self.key(tenant), raw) if raw else await self._migrate(tenant)
        if state is None:
            self._baselines.pop(tenant, None)
            return None
        self._baselines[tenant] = _Baseline.of(state)
        return state

    async def _migrate(self, tenant: str) -> EngineState | None:
        old_key = self._keys.engine_state(tenant)
        old = await self._redis.get(old_key)
        if old is None:
            return None
        state = EngineState.from_dict(_json(old_key, None, old))
        self._baselines.pop(tenant, None)
        async with self._redis.pipeline(transaction=True) as pipe:
            staged = self.stage(pipe, tenant, state)
            pipe.delete(old_key)
            await pipe.execute()
        staged.done()
        return state

    def forget(self, tenant: str) -> None:
        self._baselines.pop(tenant, None)

    async def save(self, tenant: str, state: EngineState) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            staged = self.stage(pipe, tenant, state)
            await pipe.execute()
        staged.done()

    def stage(self, pipe: Pipeline, tenant: str, state: EngineState) -> StagedSave:
        """Queue on `pipe` the commands that bring the tenant's hash from the last saved state
        to `state` (see the module docstring)."""
        base = self._baselines.get(tenant) or _Baseline()
        key = self.key(tenant)
        fields = _changed_agents(base.agents, state.agents)
        fields[PROGRESS] = orjson.dumps({aid: m.progress() for aid, m in state.agents.items()})
        fields[HEADER] = orjson.dumps(state.header_to_dict())
        _changed_members(fields, TEAM, base.teams, state.teams)
        _changed_members(fields, QUEUE, base.queues, state.queues)
        gone = (
            [AGENT + a for a in base.agents.keys() - state.agents.keys()]
            + [TEAM + t for t in base.teams.keys() - state.teams.keys()]
            + [QUEUE + q for q in base.queues.keys() - state.queues.keys()]
        )
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        if gone:
            pipe.hdel(key, *gone)
        after = _Baseline(dict(state.agents), dict(state.teams), dict(state.queues))

        def done() -> None:
            self._baselines[tenant] = after

        return StagedSave(len(fields), len(gone), done)


def _changed_agents(
    before: dict[str, AgentMemory], after: dict[str, AgentMemory]
) -> dict[str, bytes]:
    """The body fields of the agents whose body changed."""
    out: dict[str, bytes] = {}
    for aid, m in after.items():
        prev = before.get(aid)
        if prev is not m and (prev is None or not m.same_body(prev)):
            out[AGENT + aid] = orjson.dumps(m.body_to_dict())
    return out


def _changed_members(
    out: dict[str, bytes],
    prefix: str,
    before: dict[str, TeamMemory] | dict[str, QueueMemory],
    after: dict[str, TeamMemory] | dict[str, QueueMemory],
) -> None:
    for k, m in after.items():
        prev = before.get(k)
        if prev is not m and prev != m:
            out[prefix + k] = orjson.dumps(m.to_dict())


def _json(key: str, name: str | None, raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        where = key if name is None else f"{key} field {name!r}"
        raise ValueError(f"engine state {where}: not JSON ({e})") from None


def _assemble(key: str, raw: Mapping[bytes | str, bytes | str]) -> EngineState:
    """An `EngineState` from the fields of its hash (see the module docstring)."""
    fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
    header = fields.pop(HEADER, None)
    if header is None:
        log.warning("engine_state.no_header", key=key, fields=len(fields))
    state = EngineState.from_header({} if header is None else _json(key, HEADER, header))
    progress: dict[str, Any] = _json(key, PROGRESS, fields.pop(PROGRESS, b"{}"))
    bodies: dict[str, Any] = {}
    for name, value in fields.items():
        ident = name[2:]
        if name.startswith(AGENT):
            bodies[ident] = _json(key, name, value)
        elif name.startswith(TEAM):
            state.teams[ident] = TeamMemory.from_dict(_json(key, name, value))
        elif name.startswith(QUEUE):
            state.queues[ident] = QueueMemory.from_dict(_json(key, name, value))
        else:
            raise ValueError(f"engine state {key}: unknown field {name!r}")
    for aid in bodies.keys() & progress.keys():
        state.agents[aid] = AgentMemory.from_parts(bodies[aid], progress[aid])
    halves = sorted(bodies.keys() ^ progress.keys())
    if halves:
        log.warning("engine_state.agents_dropped", key=key, count=len(halves), agents=halves[:10])
    return state


class MemoryEngineStateStore:
    """For tests that do not exercise persistence."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    async def load(self, tenant: str) -> EngineState | None:
        raw = self.saved.get(tenant)
        return None if raw is None else EngineState.from_dict(orjson.loads(raw))

    async def save(self, tenant: str, state: EngineState) -> None:
        self.saved[tenant] = orjson.dumps(state.to_dict())

    def forget(self, tenant: str) -> None:
        return None  # every save is whole
