"""Leases in Redis: which replica works which tenant, and who delivers the outbox.

A lease is a key holding `{replica}:{token}` with a TTL. Acquiring it (SET NX PX) first raises
the resource's fencing token (INCR), so every acquisition gets a larger token than any before.
A write on behalf of a lease (outbox entries, alert records, the engine state, acknowledgements)
is allowed only while the fencing token still equals the writer's: it is checked in the same
transaction as the write (WATCH on the token key, or a Lua script), so a replica that was paused
past its lease and then resumes cannot write once another has acquired the lease, whatever it
still believes. A lease that merely expired while nobody else took it is renewed as it was (its
token has not moved): the holder's memory is still the newest there is.

Replicas announce themselves in a sorted set (`{p}:replicas`, score: last heartbeat in epoch
milliseconds from the injected clock); one whose heartbeat is older than the lease TTL is dead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
import structlog

from monitor.core.clock import Clock
from monitor.core.keys import RedisKeys

log = structlog.get_logger(__name__)

# KEYS: lease, token counter. ARGV: replica, ttl ms. Returns the new token, or 0 when another
# replica holds it. A lease held under this replica's own name is from an earlier life of it (a
# restart with the same `replicas.id`, or a lease it gave up after a refused write): taken anew.
# A counter that does not exist starts at Redis' clock in milliseconds, not at 1: after Redis
# lost its data, a new token must still be larger than any a replica holds.
_ACQUIRE = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. ':' then return 0 end
local token
if redis.call('EXISTS', KEYS[2]) == 1 then
  token = redis.call('INCR', KEYS[2])
else
  local now = redis.call('TIME')
  token = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return tonumber(token)
"""

# KEYS: lease, token counter. ARGV: holder value, ttl ms, token. 1: still ours, 0: lost.
# An expired lease nobody took since (same token) is ours again; so is one whose counter is
# gone (Redis lost its data: no replica can have acquired it since without creating it).
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if v then return 0 end
local token = redis.call('GET', KEYS[2])
if token == ARGV[3] or not token then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: holder value.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class FencedOut(Exception):
    """A write refused because another replica has acquired the lease since (a newer token)."""

    def __init__(self, fence: Fence, current: int | None) -> None:
        super().__init__(
            f"{fence.resource}: fencing token is {current}, this replica holds {fence.token}"
        )
        self.fence = fence
        self.current = current


@dataclass(frozen=True, slots=True)
class Fence:
    """The token a write must still hold: `resource` is a tenant, or `outbox` for delivery."""

    resource: str
    key: str  # the token counter
    token: int

    def check(self, current: Any) -> None:
        """Raise FencedOut unless `current` (the counter's value, as Redis gave it) is ours."""
        value = None if current is None else int(current)
        if value != self.token:
            raise FencedOut(self, value)

    async def verify(self, redis: Any) -> None:
        """Read the counter and check it (inside a WATCH: `redis` is the pipeline)."""
        self.check(await redis.get(self.key))


@dataclass(frozen=True, slots=True)
class Lease:
    resource: str
    key: str
    replica: str
    fence: Fence

    @property
    def value(self) -> str:
        return f"{self.replica}:{self.fence.token}"


class LeaseStore:
    """Acquire, renew and release leases; heartbeats of the replicas."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        replica: str,
        ttl: timedelta,
        clock: Clock,
        key_prefix: str = "pzm",
    ) -> None:
        self.redis = redis
        self.replica = replica
        self.ttl_ms = max(1, int(ttl.total_seconds() * 1000))
        self.clock = clock
        self.keys = RedisKeys(key_prefix)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def _keys_of(self, resource: str) -> tuple[str, str]:
        if resource == OUTBOX:
            return self.keys.delivery_lease(), self.keys.delivery_token()
        return self.keys.lease(resource), self.keys.fencing_token(resource)

    async def acquire(self, resource: str) -> Lease | None:
        """The lease if it was free (with a new, larger token), else None."""
        lease_key, token_key = self._keys_of(resource)
        args: list[str | int] = [self.replica, self.ttl_ms]
        token = int(await self._acquire(keys=[lease_key, token_key], args=args))
        if not token:
            return None
        return Lease(resource, lease_key, self.replica, Fence(resource, token_key, token))

    async def renew(self, lease: Lease) -> bool:
        """Extend the lease; False if another replica has acquired it since."""
        f = lease.fence
        args: list[str | int] = [lease.value, self.ttl_ms, str(f.token)]
        return bool(await self._renew(keys=[lease.key, f.key], args=args))

    async def release(self, lease: Lease) -> bool:
        return bool(await self._release(keys=[lease.key], args=[lease.value]))

    async def owners(self, resources: list[str]) -> dict[str, str | None]:
        """Resource -> the replica holding its lease (None: free)."""
        if not resources:
            return {}
        raws = await self.redis.mget([self._keys_of(r)[0] for r in resources])
        return {r: _holder(raw) for r, raw in zip(resources, raws, strict=True)}

    async def heartbeat(self) -> list[str]:
        """Announce this replica; returns the live replicas (this one included), sorted. Dead
        ones (no heartbeat within the TTL) are removed on the way."""
        now_ms = int(self.clock.now().timestamp() * 1000)
        key = self.keys.replicas()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {self.replica: now_ms})
            pipe.zremrangebyscore(key, "-inf", now_ms - self.ttl_ms)
            pipe.zrange(key, 0, -1)
            *_, members = await pipe.execute()
        return sorted({_text(m) for m in members} | {self.replica})

    async def leave(self) -> None:
        await self.redis.zrem(self.keys.replicas(), self.replica)


OUTBOX = "outbox"  # the resource name of the delivery lease


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _holder(raw: bytes | str | None) -> str | None:
    if raw is None:
        return None
    replica, _, _ = _text(raw).rpartition(":")
    return replica
