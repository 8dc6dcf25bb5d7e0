"""Leases, fencing and the ownership round of replicas sharing tenants: the pure assignment, and
`Replicas` on a real redis-server with heartbeats on an injected (virtual) clock."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from monitor.alerts.outbox import Outbox
from monitor.app.replicas import Replicas
from monitor.core.clock import VirtualClock
from monitor.core.keys import RedisKeys
from monitor.engine.memory import EngineState, TeamMemory
from monitor.pipeline.fenced_store import FencedEngineStateStore
from monitor.pipeline.leases import OUTBOX, FencedOut, Lease, LeaseStore
from monitor.pipeline.ownership import assignment, fair_share, plan
from monitor.pipeline.state_store import RedisEngineStateStore
from tests.alerts.helpers import T0, alert

TENANTS = [f"t{i:02d}" for i in range(10)]
TTL = timedelta(seconds=10)
KEYS = RedisKeys()


# --- the assignment (pure) ------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [["a"], ["a", "b"], ["a", "b", "c"], list("abcdefg")])
def test_assignment_is_balanced_and_the_same_whatever_the_order(replicas: list[str]) -> None:
    got = assignment(TENANTS, replicas)
    assert sorted(got) == TENANTS
    load = Counter(got.values())
    assert max(load.values()) <= math.ceil(len(TENANTS) / len(replicas))
    assert min(load[r] for r in replicas) >= len(TENANTS) // len(replicas)
    assert assignment(list(reversed(TENANTS)), list(reversed(replicas))) == got


def test_a_joining_replica_takes_its_share_and_a_leaving_one_hands_over_only_what_it_must() -> None:
    before = assignment(TENANTS, ["a", "b"])
    after = assignment(TENANTS, ["a", "b", "c"])
    assert Counter(after.values())["c"] >= len(TENANTS) // 3
    assert max(Counter(after.values()).values()) == fair_share(len(TENANTS), 3)
    # back to two: the same as before (no history: no flapping between equal views)
    assert assignment(TENANTS, ["a", "b"]) == before


def test_plan_releases_what_is_assigned_elsewhere_and_acquires_only_free_tenants() -> None:
    owners: dict[str, str | None] = dict.fromkeys(TENANTS, "a")  # a holds everything
    target = assignment(TENANTS, ["a", "b"], owners)
    assert Counter(target.values()) == {"a": 5, "b": 5}
    moves_b = plan("b", TENANTS, ["a", "b"], owners)
    assert moves_b.acquire == ()  # all held: b waits for a to let go
    moves_a = plan("a", TENANTS, ["a", "b"], owners)
    assert set(moves_a.release) == {t for t, r in target.items() if r == "b"}
    for t in moves_a.release:
        owners[t] = None
    assert set(plan("b", TENANTS, ["a", "b"], owners).acquire) == set(moves_a.release)


def test_a_settled_assignment_plans_nothing() -> None:
    live = ["a", "b", "c"]
    owners: dict[str, str | None] = dict(assignment(TENANTS, live))
    for me in live:
        assert plan(me, TENANTS, live, owners) == plan(me, [], live, {})


# --- leases and fencing on a real Redis ----------------------------------------------------


def store(redis: aioredis.Redis, replica: str, clock: VirtualClock) -> LeaseStore:
    return LeaseStore(redis, replica=replica, ttl=TTL, clock=clock)


def fenced_state(redis: aioredis.Redis, lease: Lease) -> FencedEngineStateStore:
    return FencedEngineStateStore(RedisEngineStateStore(redis), lease.fence, redis)


def state_by(*teams: str) -> EngineState:
    """An engine state told apart by its team names."""
    return EngineState(tenant="12345", teams={t: TeamMemory() for t in teams})


async def expire(redis: aioredis.Redis, lease: Lease) -> None:
    """What the TTL does when its holder stops renewing (without waiting for it)."""
    await redis.delete(lease.key)


async def test_a_lease_is_held_by_one_and_every_acquisition_raises_the_token(
    redis_client: aioredis.Redis,
) -> None:
    clock = VirtualClock(T0)
    a, b = store(redis_client, "a", clock), store(redis_client, "b", clock)
    la = await a.acquire("t1")
    assert la is not None
    assert la.fence.token > 1_700_000_000_000  # the first one: Redis' clock in ms
    assert await b.acquire("t1") is None
    assert await a.owners(["t1", "t2"]) == {"t1": "a", "t2": None}
    assert 0 < await redis_client.pttl(la.key) <= 10_000
    await expire(redis_client, la)
    lb = await b.acquire("t1")
    assert lb is not None
    assert lb.fence.token == la.fence.token + 1
    assert not await a.renew(la)  # b has it now: a's lease is lost for good
    assert await b.renew(lb)
    assert await a.owners(["t1"]) == {"t1": "b"}


async def test_an_expired_lease_nobody_took_is_renewed_with_its_token(
    redis_client: aioredis.Redis,
) -> None:
    """A holder slower than its TTL whose tenant nobody took keeps it: its memory is still the
    newest, and its token still fences the writes."""
    a = store(redis_client, "a", VirtualClock(T0))
    la = await a.acquire("t1")
    assert la is not None
    await expire(redis_client, la)
    assert await a.renew(la)
    assert await a.owners(["t1"]) == {"t1": "a"}
    assert await a.release(la)
    assert await a.owners(["t1"]) == {"t1": None}


async def test_a_paused_owner_cannot_write_engine_state_or_outbox_after_losing_the_lease(
    redis_client: aioredis.Redis,
) -> None:
    clock = VirtualClock(T0)
    a, b = store(redis_client, "a", clock), store(redis_client, "b", clock)
    la = await a.acquire("12345")
    assert la is not None
    state_a = fenced_state(redis_client, la)
    await state_a.save("12345", state_by("a"))
    outbox = Outbox(redis_client, sinks=["hook"], clock=clock)
    assert await outbox.publish([alert("1001")], fence=la.fence) == 1
    # a pauses past its TTL; b takes over and writes
    await expire(redis_client, la)
    lb = await b.acquire("12345")
    assert lb is not None
    state_b = fenced_state(redis_client, lb)
    assert (await state_b.load("12345")) == state_by("a")
    await state_b.save("12345", state_by("b"))
    entries = await redis_client.xlen(KEYS.outbox())
    alerts = await redis_client.hgetall(KEYS.alerts())
    # a resumes: every write is refused and nothing changes
    with pytest.raises(FencedOut) as refused:
        await state_a.save("12345", state_by("a", "stale"))
    assert refused.value.current == lb.fence.token
    with pytest.raises(FencedOut):
        await outbox.publish([alert("1002")], fence=la.fence)
    assert await fenced_state(redis_client, lb).load("12345") == state_by("b")
    assert await redis_client.xlen(KEYS.outbox()) == entries
    assert await redis_client.hgetall(KEYS.alerts()) == alerts
    # the new owner's writes go through
    assert await outbox.publish([alert("1002")], fence=lb.fence) == 1


async def test_heartbeats_on_the_injected_clock_say_who_is_alive(
    redis_client: aioredis.Redis,
) -> None:
    clock = VirtualClock(T0)
    a, b = store(redis_client, "a", clock), store(redis_client, "b", clock)
    assert await a.heartbeat() == ["a"]
    assert await b.heartbeat() == ["a", "b"]
    clock.advance(6)
    assert await b.heartbeat() == ["a", "b"]
    clock.advance(5)  # a silent for 11 s > TTL
    assert await b.heartbeat() == ["b"]
    await b.leave()
    assert await a.heartbeat() == ["a"]


# --- the ownership round ---------------------------------------------------------------------


class Cluster:
    """Replicas whose tenant work is a record of starts and stops."""

    def __init__(self, redis: aioredis.Redis, clock: VirtualClock) -> None:
        self.redis = redis
        self.clock = clock
        self.replicas: dict[str, Replicas] = {}
        self.events: list[tuple[str, str, str]] = []

    def add(self, name: str) -> Replicas:
        async def start(tenant: str, lease: Lease) -> None:
            self.events.append((name, "start", tenant))

        async def stop(tenant: str, save: bool) -> None:
            self.events.append((name, "save-stop" if save else "drop", tenant))

        def abandon(tenant: str) -> None:
            self.events.append((name, "abandon", tenant))

        r = Replicas(
            store(self.redis, name, self.clock),
            TENANTS,
            start_tenant=start,
            stop_tenant=stop,
            abandon_tenant=abandon,
        )
        self.replicas[name] = r
        return r

    async def rounds(self, n: int = 3, *, alive: list[str] | None = None) -> None:
        for _ in range(n):
            for name, r in sorted(self.replicas.items()):
                if alive is None or name in alive:
                    await r.round()
            self.clock.advance(TTL.total_seconds() / 4)

    async def owners(self) -> dict[str, str | None]:
        return await next(iter(self.replicas.values())).leases.owners(TENANTS)


async def test_replicas_share_the_tenants_and_a_dead_ones_move_without_flapping(
    redis_client: aioredis.Redis,
) -> None:
    cluster = Cluster(redis_client, VirtualClock(T0))
    a = cluster.add("a")
    await cluster.rounds(1)
    assert sorted(a.held) == TENANTS  # alone: everything, at the first round
    assert a.delivery is not None
    b, c = cluster.add("b"), cluster.add("c")
    await cluster.rounds(3)
    owners = await cluster.owners()
    assert owners == assignment(TENANTS, ["a", "b", "c"], owners)  # settled: a fixed point
    for r in (a, b, c):
        assert sorted(r.held) == sorted(t for t, o in owners.items() if o == r.replica)
        assert len(r.held) <= 4
    handed = [e for e in cluster.events if e[1] == "save-stop"]
    assert handed
    assert all(who == "a" for who, _, _ in handed)
    settled = len(cluster.events)
    await cluster.rounds(4)
    assert len(cluster.events) == settled  # settled: no flapping
    # c dies: its leases expire with its heartbeat; a and b take its tenants, and only those
    for lease in c.held.values():
        await expire(redis_client, lease)
    await cluster.rounds(5, alive=["a", "b"])
    after = await cluster.owners()
    assert after == assignment(TENANTS, ["a", "b"], after)
    assert {t for t in TENANTS if after[t] != owners[t]} == set(c.held)
    assert sorted(Counter(after.values()).values()) == [5, 5]


async def test_a_refused_write_drops_the_tenant_at_once_and_the_lease_at_the_next_round(
    redis_client: aioredis.Redis,
) -> None:
    cluster = Cluster(redis_client, VirtualClock(T0))
    a = cluster.add("a")
    await cluster.rounds(1)
    lease = a.held["t03"]
    a.fenced("t03", FencedOut(lease.fence, lease.fence.token + 1))
    a.fenced("t03", FencedOut(lease.fence, lease.fence.token + 1))
    assert ("a", "abandon", "t03") in cluster.events
    assert a.fenced_writes == {"t03": 2}
    await a.round()
    assert ("a", "drop", "t03") in cluster.events  # dropped without a save
    assert "t03" in a.held  # ...and, alone and the lease free again, taken anew


async def test_the_delivery_lease_is_held_by_one_replica(redis_client: aioredis.Redis) -> None:
    cluster = Cluster(redis_client, VirtualClock(T0))
    a, b = cluster.add("a"), cluster.add("b")
    await cluster.rounds(2)
    assert (a.fence is None) != (b.fence is None)
    holder, other = (a, b) if a.fence is not None else (b, a)
    assert holder.fence is not None
    holder_token = holder.fence.token
    other.lost(FencedOut(holder.fence, None))
    assert other.fence is None
    assert other.fenced_writes == {OUTBOX: 1}
    assert holder.readiness()["delivers_outbox"] is True
    await holder.stop()  # hands over: the other delivers from its next round
    await other.round()
    assert other.fence is not None
    assert other.fence.token == holder_token + 1


def test_current_owners_keep_their_tenants_when_a_replica_dies_or_joins() -> None:
    three = assignment(TENANTS, ["a", "b", "c"])
    after_c_died = assignment(TENANTS, ["a", "b"], three)
    # only c's tenants moved
    assert {t for t in TENANTS if after_c_died[t] != three[t]} == {
        t for t, r in three.items() if r == "c"
    }
    joined = assignment(TENANTS, ["a", "b", "c", "d"], three)
    moved = {t for t in TENANTS if joined[t] != three[t]}
    assert all(joined[t] == "d" for t in moved)  # only to the newcomer
    assert len(moved) == Counter(joined.values())["d"] >= len(TENANTS) // 4
    assert assignment(TENANTS, ["a", "b", "c"], joined | dict.fromkeys(moved, None)) == three


async def test_a_replica_paused_past_its_ttl_stops_evaluating_until_a_renewal(
    redis_client: aioredis.Redis,
) -> None:
    """On the injected clock: a lease not confirmed within its TTL is not relied on (the
    replica may have been paused and replaced); a renewal that finds it still ours restores it."""
    clock = VirtualClock(T0)
    cluster = Cluster(redis_client, clock)
    a = cluster.add("a")
    await a.round()
    assert a.works("t01")
    assert a.fence is not None
    clock.advance(TTL.total_seconds() - 0.1)
    assert a.works("t01")
    clock.advance(0.2)
    assert not a.works("t01")
    assert a.fence is None  # and it delivers nothing either
    assert not a.works("t99")  # never held
    await a.round()
    assert a.works("t01")
    assert a.fence is not None


async def test_after_redis_lost_its_data_new_tokens_still_fence_the_old_ones(
    redis_client: aioredis.Redis,
) -> None:
    """Tokens do not start again at 1 after a flush: the holder's renewal claims its token back,
    and a replica that acquires first gets a larger token than any held before."""
    clock = VirtualClock(T0)
    a, b = store(redis_client, "a", clock), store(redis_client, "b", clock)
    la, lx = await a.acquire("t1"), await a.acquire("t2")
    assert la is not None
    assert lx is not None
    await redis_client.flushdb()
    assert await a.renew(la)  # t1: claimed back with its token, fencing as before
    await FencedEngineStateStore(RedisEngineStateStore(redis_client), la.fence, redis_client).save(
        "t1", state_by("a")
    )
    lb = await b.acquire("t2")  # t2: another replica was first
    assert lb is not None
    assert lb.fence.token > lx.fence.token
    assert not await a.renew(lx)
    with pytest.raises(FencedOut):
        await fenced_state(redis_client, lx).save("t2", state_by("stale"))
