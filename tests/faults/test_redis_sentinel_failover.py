"""Redis that survives a machine: the monitor's Redis is the primary that three real Redis
Sentinels watch (one replica). In the middle of an incident the primary is SIGKILLed (or demoted
by a failover while it runs on); the Sentinels promote the replica; the monitor finds the new
primary through them and carries on.
Every alert fires and resolves exactly once at the receiver, including the one that resolves while
there is no primary and the ones that fire after the failover, and no data loss is reported (the
replica had everything)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from monitor.app.redis_client import SentinelRedis
from tests.faults.harness import Break, start_rig, wait_for
from tests.faults.sentinel import SERVICE, SentinelCluster, sentinel_command

# without the Debian package redis-sentinel, `redis-server --sentinel` is the same program
pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or sentinel_command(Path("sentinel.conf")) is None,
    reason=(
        "redis-server is not installed (make test installs the Debian packages redis-server "
        "and redis-sentinel when run as root)"
    ),
)

DOWN_AT = 6.0  # seconds after the start, once the first firings are out
BREAKS = [
    Break("1001", ends=3, back=DOWN_AT + 12),  # fires before, resolves after the failover
    Break("1002", ends=3, back=DOWN_AT + 1),  # fires before, resolves while there is no primary
    Break("1003", ends=DOWN_AT + 1, back=DOWN_AT + 10),  # fires around the failover
    Break("1004", ends=DOWN_AT + 8, back=DOWN_AT + 16),  # fires and resolves on the new primary
]


@pytest.mark.parametrize(
    ("how", "leases"), [("sigkill", False), ("demote", False), ("sigkill", True)]
)
async def test_sentinel_failover_during_an_incident_loses_and_doubles_nothing(
    how: str, leases: bool
) -> None:
    """`sigkill`: the primary's machine is gone. `demote`: a failover while it runs on (it becomes
    a replica and answers the monitor's writes with READONLY until the client moves on). With
    `leases`, the monitor is a replica (`replicas.enabled`) whose tenant and outbox leases live
    in the Redis that fails over."""
    cluster = SentinelCluster(down_after_ms=1000, failover_timeout_ms=3000)
    await asyncio.to_thread(cluster.start)
    redis = {"sentinels": cluster.sentinels, "service_name": SERVICE}
    extra = {"replicas": {"enabled": True, "id": "replica-a"}} if leases else None
    rig = await start_rig(BREAKS, redis, extra=extra)
    try:
        client = rig.monitor.redis
        assert isinstance(client, SentinelRedis)
        await wait_for(
            "the first firings", lambda: all(rig.count(a, "firing") for a in ("1001", "1002"))
        )
        await asyncio.sleep(max(0.0, DOWN_AT - (time.monotonic() - rig.started)))
        before = sum(rig.delivered().values())
        await asyncio.to_thread(
            cluster.kill_primary if how == "sigkill" else cluster.demote_primary
        )
        killed = time.monotonic()
        await wait_for("the replica promoted", lambda: cluster.primary() == cluster.replica_port)
        promoted = time.monotonic() - killed
        await wait_for(
            "every resolve", lambda: all(rig.count(b.agent, "resolved") for b in BREAKS), 40
        )
        await asyncio.sleep(1.5)  # anything sent twice would arrive now
        assert await rig.metric("puzzelmon_redis_up") == 1
        assert await rig.metric("puzzelmon_redis_data_losses_total") == 0
        assert await rig.metric("puzzelmon_redis_primary_changes_total") == 1
        assert rig.monitor.redis_guard.primary == ("127.0.0.1", cluster.replica_port)
        # the pool follows the promoted replica, found through the Sentinels
        assert client.connection_pool.master_address == ("127.0.0.1", cluster.replica_port)  # type: ignore[attr-defined]
    finally:
        await rig.close()
        await asyncio.to_thread(cluster.cleanup)

    delivered = rig.delivered()
    total = sum(delivered.values())
    print(
        f"failover ({how}, leases {leases}): replica promoted {promoted:.1f} s after; "
        f"notifications delivered before the failover: {before}, after: {total - before}; "
        f"{sorted(delivered.items())}"
    )
    for b in BREAKS:
        assert rig.count(b.agent, "firing") == 1, b
        assert rig.count(b.agent, "resolved") == 1, b
    assert not [k for k in delivered if k[2] == "redelivery"]
    assert before >= 2  # 1001 and 1002 fired through the old primary
    assert total - before >= 6  # the rest went out through the promoted replica
