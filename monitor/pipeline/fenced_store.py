"""The engine state store of a tenant worked under a lease: every save checks the fencing token
in the same transaction (WATCH on the token key, then the store's staged save in MULTI/EXEC), so
a replica that lost the tenant cannot overwrite the newer owner's state."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from monitor.engine.engine import EngineState
from monitor.pipeline.leases import Fence
from monitor.pipeline.state_store import RedisEngineStateStore


class FencedEngineStateStore:
    """`RedisEngineStateStore` whose saves go through only while `fence` holds; a refused save
    raises `FencedOut` and writes nothing (the store's baseline stays, so nothing is lost)."""

    def __init__(self, store: RedisEngineStateStore, fence: Fence, redis: aioredis.Redis) -> None:
        self.store = store
        self.fence = fence
        self._redis = redis

    async def load(self, tenant: str) -> EngineState | None:
        return await self.store.load(tenant)

    def forget(self, tenant: str) -> None:
        self.store.forget(tenant)

    async def save(self, tenant: str, state: EngineState) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.fence.key)
                    await self.fence.verify(pipe)
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    staged = self.store.stage(pipe, tenant, state)
                    await pipe.execute()
                    break
                except WatchError:
                    continue  # the token moved meanwhile: read it again (and refuse)
        staged.done()
