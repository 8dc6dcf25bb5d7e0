"""Replicas sharing tenants, with real processes: three `python -m monitor run` with one
configuration on one redis-server, three simulated tenants over HTTP, a loopback webhook
receiver. SIGKILL the owner of a tenant during an incident: the tenant is polled again within
three agent-state cadences and its alert fires and resolves exactly once at the receiver. Then
SIGSTOP the owner of another tenant past its lease, let another replica take over (and fire that
tenant's alert), SIGCONT it: it writes nothing of that tenant (Redis MONITOR, by connection
name) until it legitimately acquires the tenant again, and nothing reaches the receiver twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from monitor.core.clock import SystemClock
from monitor.schedules.store import ScheduleStore
from tests.app.replica_cluster import CADENCE, Cluster, scenario, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.replicas

KILLED, STOPPED, QUIET = "20001", "20002", "20003"
WRITES = {"SET", "HSET", "HSETNX", "HINCRBYFLOAT", "HINCRBY", "HDEL", "XADD", "DEL", "ZADD"}


@pytest.fixture
async def cluster(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[Cluster]:
    if redis_server.proc is None:
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushdb()
    c = Cluster(tmp_path, redis_server.url)
    try:
        yield c
    finally:
        await c.close()


def at(t0: datetime, seconds: float) -> datetime:
    return t0 + timedelta(seconds=seconds)


async def start(cluster: Cluster) -> datetime:
    """Tenant KILLED: overrun fires at +19 s, resolves at +34 s; STOPPED: +47 s and +62 s;
    QUIET: no incident. Schedules into Redis, then three replicas."""
    t0 = SystemClock().now().replace(microsecond=0)
    times = {KILLED: (16, 34), STOPPED: (44, 62), QUIET: (300, 310)}
    for tenant, (end, back) in times.items():
        await cluster.add_tenant(scenario(tenant, t0, at(t0, end), at(t0, back)))
    cluster.write_config(await cluster.start_receiver())
    r = aioredis.Redis.from_url(cluster.redis_url)
    store = ScheduleStore(r)
    for t in cluster.tenants.values():
        sc = t.scenario
        segments = [s for a in sc.agents for s in a.segments]
        await store.replace(sc.customer_key, sc.timezone, segments)
    await r.aclose()
    for name in ("r1", "r2", "r3"):
        await cluster.start_replica(name)
    return t0


async def settled(cluster: Cluster, replicas: int) -> dict[str, str]:
    """Tenant -> owner once every tenant is owned by exactly one of `replicas` live ones."""

    async def check() -> dict[str, str] | None:
        owners = await cluster.owners()
        owned = [t for ts in owners.values() for t in ts]
        loads = [len(ts) for ts in owners.values()]
        if len(owners) != replicas or sorted(owned) != sorted(cluster.tenants):
            return None
        if max(loads) - min(loads) > 1:
            return None  # still handing over to the ones that joined
        return {t: r for r, ts in owners.items() for t in ts}

    result: dict[str, str] = await wait_for(f"{replicas} replicas sharing", check, 40)
    return result


def fired(cluster: Cluster, tenant: str, status: str = "firing") -> bool:
    return cluster.notifications()[tenant, status] > 0


class RedisMonitor:
    """Every command Redis executes, from a MONITOR connection in a thread."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.commands: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.client.monitor() as m:
            while not self._stop.is_set():
                self.commands.append(m.next_command())

    def __enter__(self) -> RedisMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.client.set("replicas-test:monitor-stop", "1")  # wakes the reader
        self._thread.join(5)

    def addresses_of(self, name: str) -> set[str]:
        clients = self.client.client_list()
        return {c["addr"] for c in clients if c.get("name") == f"puzzelmon-{name}"}

    def of(self, addresses: set[str]) -> list[dict[str, Any]]:
        return [c for c in self.commands if _address(c) in addresses]

    def writes(self, addresses: set[str], mention: str) -> Iterator[dict[str, Any]]:
        for c in self.of(addresses):
            verb = c["command"].split(" ", 1)[0].upper()
            if verb in WRITES and mention in c["command"]:
                yield c


def _address(command: dict[str, Any]) -> str:
    return f"{command['client_address']}:{command['client_port']}"


def acquired_at(log: Path, tenant: str, after: float) -> float:
    """When (epoch seconds) the log says the replica acquired `tenant` after `after` (inf:
    never)."""
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("event") == "lease.acquired" and entry.get("tenant") == tenant:
                ts = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
                if ts > after:
                    return ts
    return float("inf")


async def kill_the_owner_during_an_incident(cluster: Cluster, t0: datetime) -> None:
    await settled(cluster, 3)
    await wait_for("the firing of KILLED", lambda: fired(cluster, KILLED), 40)
    await asyncio.sleep(1.0)  # its delivery recorded, whoever delivered it
    owners = await settled(cluster, 3)
    victim = cluster.replicas[owners[KILLED]]
    victim.signal(signal.SIGKILL)
    killed = time.monotonic()
    sim = cluster.tenants[KILLED]
    polled = await wait_for("KILLED polled again", lambda: sim.polled_after(killed + 0.2), 20)
    assert polled - killed <= 3 * CADENCE, f"polled again {polled - killed:.1f} s after the kill"
    print(f"KILLED ({victim.name}) polled again {polled - killed:.2f} s after SIGKILL")
    await wait_for("the resolve of KILLED", lambda: fired(cluster, KILLED, "resolved"), 40)


async def stop_an_owner_past_its_lease(cluster: Cluster) -> None:
    owners = await settled(cluster, 2)
    paused = cluster.replicas[owners[STOPPED]]
    paused.signal(signal.SIGSTOP)
    stopped_at = time.time()

    async def taken_over() -> bool:
        return any(STOPPED in ts for ts in (await cluster.owners()).values())

    await wait_for("another replica owning STOPPED", taken_over, 30)
    await wait_for("the firing of STOPPED", lambda: fired(cluster, STOPPED), 40)
    with RedisMonitor(cluster.redis_url) as mon:
        resumed = time.time()
        paused.signal(signal.SIGCONT)
        await asyncio.sleep(4.0)
        addresses = mon.addresses_of(paused.name)
    assert addresses, "the resumed replica has no named connection"
    seen = mon.of(addresses)
    assert seen, "nothing seen from the resumed replica: the capture proves nothing"
    again = acquired_at(paused.log, STOPPED, stopped_at)
    stale = [c for c in mon.writes(addresses, STOPPED) if c["time"] < again]
    print(
        f"STOPPED ({paused.name}): {len(mon.commands)} commands seen, {len(seen)} from it: "
        f"{sorted({c['command'].split(' ', 1)[0] for c in seen})}, "
        f"{len(list(mon.writes(addresses, STOPPED)))} writes of it from the resumed replica, "
        f"the first {again - resumed:.2f} s after SIGCONT (its new lease)"
    )
    assert stale == [], f"the resumed ex-owner wrote (it re-acquired at {again}, resumed {resumed})"
    await wait_for("the resolve of STOPPED", lambda: fired(cluster, STOPPED, "resolved"), 40)


async def test_failover_and_fencing_with_three_run_processes(cluster: Cluster) -> None:
    t0 = await start(cluster)
    await kill_the_owner_during_an_incident(cluster, t0)
    await stop_an_owner_past_its_lease(cluster)
    await asyncio.sleep(2 * CADENCE)  # anything late or doubled would arrive now
    counts = cluster.notifications()
    assert counts == {
        (KILLED, "firing"): 1,
        (KILLED, "resolved"): 1,
        (STOPPED, "firing"): 1,
        (STOPPED, "resolved"): 1,
    }, counts
    keys = list(cluster.idempotency_keys())
    assert len(keys) == len(set(keys)), "a notification reached the receiver twice"
