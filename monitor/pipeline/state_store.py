"""Persistence of the engine's memory in Redis, so a restart neither re-fires open alerts nor
resets state durations and adherence counters."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

from monitor.core.keys import RedisKeys


class EngineStateStore(Protocol):
    async def load(self, tenant: str) -> dict[str, Any] | None: ...

    async def save(self, tenant: str, state: dict[str, Any]) -> None: ...


class RedisEngineStateStore:
    """One JSON document per tenant under `{prefix}:{tenant}:engine`."""

    def __init__(self, redis: aioredis.Redis, *, key_prefix: str = "pzm") -> None:
        self._redis = redis
        self._keys = RedisKeys(key_prefix)

    def key(self, tenant: str) -> str:
        return self._keys.engine_state(tenant)

    async def load(self, tenant: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self.key(tenant))
        if raw is None:
            return None
        data: dict[str, Any] = orjson.loads(raw)
        return data

    async def save(self, tenant: str, state: dict[str, Any]) -> None:
        await self._redis.set(self.key(tenant), orjson.dumps(state))


class MemoryEngineStateStore:
    """For tests that do not exercise persistence."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    async def load(self, tenant: str) -> dict[str, Any] | None:
        raw = self.saved.get(tenant)
        if raw is None:
            return None
        data: dict[str, Any] = orjson.loads(raw)
        return data

    async def save(self, tenant: str, state: dict[str, Any]) -> None:
        self.saved[tenant] = orjson.dumps(state)
