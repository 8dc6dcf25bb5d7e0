"""MCP access tokens: scopes, optional tenant and team restrictions, an expiry.

A token is shown once, when it is created; Redis holds only its SHA-256 (a token is 256 random
bits, so an unsalted fast hash is enough) and the grant. Expiry is judged on the injected clock;
the Redis TTL only cleans up.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from pydantic import SecretStr

from monitor.core.clock import Clock
from monitor.mcp.keys import McpKeys

Scope = Literal["read", "ack", "approve"]
SCOPES: tuple[Scope, ...] = ("read", "ack", "approve")
TOKEN_PREFIX = "pzm_mcp_"


class TokenRejected(Exception):
    """The token is unknown, revoked or expired (the message says which, never the token)."""


@dataclass(frozen=True, slots=True)
class Grant:
    name: str
    scopes: frozenset[str]
    tenants: tuple[str, ...] | None = None  # None: every tenant
    teams: tuple[str, ...] | None = None  # None: every team
    expires_at: datetime | None = None
    created_at: datetime | None = None

    def allows_tenant(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants

    def allows_team(self, team: str | None) -> bool:
        return self.teams is None or (team is not None and team in self.teams)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": sorted(self.scopes),
            "tenants": list(self.tenants) if self.tenants is not None else None,
            "teams": list(self.teams) if self.teams is not None else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grant:
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        tenants, teams = data.get("tenants"), data.get("teams")
        return cls(
            name=data["name"],
            scopes=frozenset(data["scopes"]),
            tenants=tuple(tenants) if tenants is not None else None,
            teams=tuple(teams) if teams is not None else None,
            expires_at=when("expires_at"),
            created_at=when("created_at"),
        )


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, redis: aioredis.Redis, *, clock: Clock, key_prefix: str = "pzm") -> None:
        self._redis = redis
        self._clock = clock
        self.keys = McpKeys(key_prefix)

    async def create(
        self,
        name: str,
        *,
        scopes: Iterable[str] = ("read",),
        tenants: Iterable[str] | None = None,
        teams: Iterable[str] | None = None,
        ttl: timedelta | None = None,
    ) -> tuple[SecretStr, Grant]:
        """A new token and its grant; a token of the same name is replaced (and stops working)."""
        scopes = frozenset(scopes)
        unknown = scopes - set(SCOPES)
        if unknown or not scopes:
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}, got {sorted(scopes)}")
        now = self._clock.now()
        grant = Grant(
            name,
            scopes,
            tuple(tenants) if tenants is not None else None,
            tuple(teams) if teams is not None else None,
            now + ttl if ttl is not None else None,
            now,
        )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self.revoke(name)
        key = self.keys.token(digest(token))
        # an hour of slack: a virtual clock may run behind Redis's own
        ex = int(ttl.total_seconds()) + 3600 if ttl is not None else None
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, orjson.dumps(grant.to_json()), ex=ex)
            pipe.hset(self.keys.names, name, digest(token))
            await pipe.execute()
        return SecretStr(token), grant

    async def revoke(self, name: str) -> bool:
        found = await self._redis.hget(self.keys.names, name)
        if found is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.token(_text(found)))
            pipe.hdel(self.keys.names, name)
            await pipe.execute()
        return True

    async def list(self) -> list[Grant]:
        """Every token's grant, expired ones included (until Redis drops them), by name."""
        out: list[Grant] = []
        for name, found in sorted(_text_map(await self._redis.hgetall(self.keys.names)).items()):
            raw = await self._redis.get(self.keys.token(found))
            if raw is None:  # expired and cleaned up by Redis
                await self._redis.hdel(self.keys.names, name)
                continue
            out.append(Grant.from_json(orjson.loads(raw)))
        return out

    async def verify(self, token: str | None) -> Grant:
        if not token:
            raise TokenRejected("an MCP token is required")
        raw = await self._redis.get(self.keys.token(digest(token.strip())))
        if raw is None:
            raise TokenRejected("unknown or revoked MCP token")
        grant = Grant.from_json(orjson.loads(raw))
        if grant.expires_at is not None and grant.expires_at <= self._clock.now():
            raise TokenRejected(f"the MCP token {grant.name!r} has expired")
        return grant


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _text_map(values: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in values.items()}
