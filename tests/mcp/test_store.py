"""Tokens and the audit stream on their own (real Redis, virtual clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from monitor.core.clock import VirtualClock
from monitor.mcp.audit import MAX_ARGUMENTS_BYTES, AuditLog
from monitor.mcp.tokens import TokenRejected, TokenStore, digest

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_a_token_is_stored_hashed_and_judged_on_the_clock(
    redis_client: aioredis.Redis,
) -> None:
    clock = VirtualClock(T0)
    store = TokenStore(redis_client, clock=clock)
    token, grant = await store.create("t", tenants=["1"], teams=["Sales"], ttl=timedelta(hours=1))
    secret = token.get_secret_value()
    assert await redis_client.exists(f"pzm:mcp:token:{digest(secret)}")
    assert (await store.verify(secret)).teams == ("Sales",)
    assert grant.scopes == frozenset({"read"})
    clock.advance(3600)
    with pytest.raises(TokenRejected, match="expired"):
        await store.verify(secret)
    with pytest.raises(ValueError, match="scopes must be"):
        await store.create("admin", scopes=["read", "admin"])


async def test_recreating_a_name_retires_the_old_token(redis_client: aioredis.Redis) -> None:
    store = TokenStore(redis_client, clock=VirtualClock(T0))
    old, _ = await store.create("desk")
    new, _ = await store.create("desk", scopes=["read", "ack"])
    with pytest.raises(TokenRejected, match="unknown or revoked"):
        await store.verify(old.get_secret_value())
    assert (await store.verify(new.get_secret_value())).scopes == {"read", "ack"}
    assert [g.name for g in await store.list()] == ["desk"]


async def test_audit_arguments_are_capped(redis_client: aioredis.Redis) -> None:
    audit = AuditLog(redis_client, clock=VirtualClock(T0))
    await audit.record(token="t", tool="open_alerts", arguments={"x": "y" * 10_000}, code="invalid")
    (entry,) = await audit.entries()
    assert len(entry["arguments"]) == MAX_ARGUMENTS_BYTES
    assert (entry["token"], entry["tool"], entry["code"]) == ("t", "open_alerts", "invalid")
