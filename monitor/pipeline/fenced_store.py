"""The engine state store of a tenant worked under a lease: every save checks the fencing token
in the same transaction (WATCH on the token key, then MULTI/EXEC around the store's writes), so a
replica that lost the tenant cannot overwrite the newer owner's state."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from monitor.core.keys import RedisKeys
from monitor.pipeline.leases import Fence


class FencedEngineStateStore:
    """`RedisEngineStateStore`'s format (one JSON value per tenant), written only while `fence`
    holds; a refused save raises `FencedOut`."""

    def __init__(self, redis: aioredis.Redis, fence: Fence, *, key_prefix: str = "pzm") -> None:
        self._redis = redis
        self._keys = RedisKeys(key_prefix)
        self.fence = fence

    async def load(self, tenant: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._keys.engine_state(tenant))
        if raw is None:
            return None
        data: dict[str, Any] = orjson.loads(raw)
        return data

    async def save(self, tenant: str, state: dict[str, Any]) -> None:
        payload = orjson.dumps(state)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.fence.key)
                    await self.fence.verify(pipe)
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    pipe.set(self._keys.engine_state(tenant), payload)
                    await pipe.execute()
                    return
                except WatchError:
                    continue  # the token moved meanwhile: read it again (and refuse)
