"""Several `run` processes sharing the tenants on one Redis: the ownership round.

Every `interval` (a quarter of the lease TTL) a replica: announces itself (heartbeat), renews the
leases it holds (a lease another replica has acquired since is lost: the tenant is dropped
without a write), computes the assignment (`monitor.pipeline.ownership`), releases what is
assigned elsewhere (polls of the tenant finish, its engine state is saved, then the lease is
deleted, so the next owner starts at once from that state), acquires the free tenants assigned
to it, and holds or tries the delivery lease (one replica delivers the outbox).

A Redis error during a round keeps what is held: nobody else can take a lease from a Redis this
replica cannot reach either, and the replica's writes are fenced once Redis answers again.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError

from monitor.pipeline.leases import OUTBOX, Fence, FencedOut, Lease, LeaseStore
from monitor.pipeline.ownership import plan

log = structlog.get_logger(__name__)

StartTenant = Callable[[str, Lease], Awaitable[None]]
StopTenant = Callable[[str, bool], Awaitable[None]]  # (tenant, save its state first)


def default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Replicas:
    """Which tenants this replica works, and whether it delivers the outbox (`DeliveryGate`)."""

    def __init__(
        self,
        leases: LeaseStore,
        tenants: Sequence[str],
        *,
        start_tenant: StartTenant,
        stop_tenant: StopTenant,
        abandon_tenant: Callable[[str], None],
    ) -> None:
        self.leases = leases
        self.replica = leases.replica
        self.tenants = sorted(tenants)
        self.held: dict[str, Lease] = {}
        self.delivery: Lease | None = None
        self.live: list[str] = [self.replica]
        self._start = start_tenant
        self._stop = stop_tenant
        self._abandon = abandon_tenant
        self._refused: set[str] = set()  # fenced out since the last round
        self.fenced_writes: dict[str, int] = {}
        # when each held lease was last (re)confirmed, on the monotonic clock, taken before the
        # command was sent: the lease is surely ours until this + TTL
        self.confirmed: dict[str, float] = {}
        self._logged: set[tuple[str, int]] = set()
        self._redis_failing = False
        self._one_round = asyncio.Lock()  # the scheduled round and a recovery's never overlap

    # --- DeliveryGate -------------------------------------------------------------------------

    @property
    def fence(self) -> Fence | None:
        if self.delivery is None or not self.works(OUTBOX):
            return None
        return self.delivery.fence

    def lost(self, error: FencedOut) -> None:
        """A delivery write was refused: another replica delivers now."""
        self._count_refusal(OUTBOX, error)
        self.delivery = None

    # --- PipelineSet.works / on_fenced --------------------------------------------------------

    def works(self, tenant: str) -> bool:
        """Whether this replica surely still holds the tenant's lease: renewed within its TTL.
        A replica paused (or cut off from Redis) longer than that stops evaluating the tenant
        until a renewal confirms it, so it never accounts a stretch its successor accounted."""
        at = self.confirmed.get(tenant)
        clock = self.leases.clock
        return at is not None and clock.monotonic() - at < self.leases.ttl_ms / 1000

    def fenced(self, tenant: str, error: FencedOut) -> None:
        """A write of `tenant` was refused: stop working it now (its snapshots are ignored from
        here on; its pollers stop at the next round, without saving anything)."""
        self._count_refusal(tenant, error)
        self._refused.add(tenant)
        self._abandon(tenant)

    def _count_refusal(self, lease: str, error: FencedOut) -> None:
        """Counted every time, logged once per lost lease (one token)."""
        self.fenced_writes[lease] = self.fenced_writes.get(lease, 0) + 1
        if (lease, error.fence.token) not in self._logged:
            self._logged.add((lease, error.fence.token))
            log.warning("lease.write_refused", lease=lease, replica=self.replica, error=str(error))

    # --- the round ----------------------------------------------------------------------------

    async def round(self) -> None:
        async with self._one_round:
            await self._round()

    async def _round(self) -> None:
        try:
            self.live = await self.leases.heartbeat()
            await self._renew()
            owners = await self.leases.owners(self.tenants)
            for tenant, owner in owners.items():
                if owner == self.replica and tenant not in self.held:
                    owners[tenant] = None  # from an earlier life of this replica: free
            moves = plan(self.replica, self.tenants, self.live, owners)
            for tenant in moves.release:
                await self._release(tenant)
            for tenant in moves.acquire:
                await self._acquire(tenant)
            await self._deliver_or_not()
            if self._redis_failing:
                log.info("lease.redis_recovered", replica=self.replica)
            self._redis_failing = False
        except RedisError as e:
            if not self._redis_failing:
                log.warning("lease.redis_error", replica=self.replica, error=type(e).__name__)
            self._redis_failing = True

    async def _renew(self) -> None:
        for tenant, lease in list(self.held.items()):
            sent = self.leases.clock.monotonic()
            if tenant in self._refused or not await self.leases.renew(lease):
                del self.held[tenant]
                self.confirmed.pop(tenant, None)
                self._refused.discard(tenant)
                log.warning("lease.lost", tenant=tenant, replica=self.replica)
                await self._stop(tenant, False)
            else:
                self.confirmed[tenant] = sent

    async def _release(self, tenant: str) -> None:
        lease = self.held.pop(tenant)
        self.confirmed.pop(tenant, None)
        try:
            await self._stop(tenant, True)
        except FencedOut:
            return  # someone else works it already: nothing to hand over
        await self.leases.release(lease)
        log.info("lease.released", tenant=tenant, replica=self.replica)

    async def _acquire(self, tenant: str) -> None:
        if tenant in self.held:
            return
        sent = self.leases.clock.monotonic()
        lease = await self.leases.acquire(tenant)
        if lease is None:
            return
        self._refused.discard(tenant)
        self.confirmed[tenant] = sent
        try:
            await self._start(tenant, lease)
        except BaseException:
            self.confirmed.pop(tenant, None)
            await self.leases.release(lease)  # let another replica try at once
            raise
        self.held[tenant] = lease
        log.info("lease.acquired", tenant=tenant, replica=self.replica, token=lease.fence.token)

    async def _deliver_or_not(self) -> None:
        sent = self.leases.clock.monotonic()
        if self.delivery is not None:
            if await self.leases.renew(self.delivery):
                self.confirmed[OUTBOX] = sent
                return
            log.warning("lease.lost", lease=OUTBOX, replica=self.replica)
            self.delivery = None
        self.delivery = await self.leases.acquire(OUTBOX)
        if self.delivery is not None:
            self.confirmed[OUTBOX] = sent
            log.info("lease.acquired", lease=OUTBOX, replica=self.replica)

    async def stop(self) -> None:
        """Hand everything over (after the pipelines' last save): release the leases and leave
        the replica set, so that the others take over at their next round."""
        for lease in [*self.held.values(), *([self.delivery] if self.delivery else [])]:
            await self.leases.release(lease)
        self.held.clear()
        self.confirmed.clear()
        self.delivery = None
        await self.leases.leave()

    # --- what /readyz and /metrics say --------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        return {
            "replica": self.replica,
            "owned_tenants": sorted(self.held),
            "delivers_outbox": self.delivery is not None,
            "live_replicas": list(self.live),
        }

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(_OwnershipCollector(self))


class _OwnershipCollector:
    def __init__(self, replicas: Replicas) -> None:
        self.replicas = replicas

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        r = self.replicas
        owned = GaugeMetricFamily(
            "puzzelmon_tenant_owned",
            "1 if this replica works the tenant (holds its lease), else 0.",
            labels=["tenant", "replica"],
        )
        for tenant in r.tenants:
            owned.add_metric([tenant, r.replica], 1.0 if tenant in r.held else 0.0)
        delivering = GaugeMetricFamily(
            "puzzelmon_outbox_delivering",
            "1 if this replica delivers the outbox (holds the delivery lease), else 0.",
            labels=["replica"],
        )
        delivering.add_metric([r.replica], 1.0 if r.delivery is not None else 0.0)
        refused = CounterMetricFamily(
            "puzzelmon_fenced_writes",
            "Writes refused because another replica acquired the lease since (`outbox`: delivery).",
            labels=["lease"],
        )
        for lease, n in sorted(r.fenced_writes.items()):
            refused.add_metric([lease], float(n))
        yield from (owned, delivering, refused)
