"""Which replica should work which tenant: pure functions, no I/O, no clock.

Every replica computes the same assignment from the same inputs (the configured tenants and the
live replicas), so they agree without talking: each tenant goes to the replica that ranks it
highest by rendezvous hashing among those still below their share (floor(tenants / replicas),
or one more for the first few to reach it), tenants taken in sorted order; a tenant stays with
its current owner while that one is live and within its share. The assignment changes only
when the set of live replicas does, so ownership does not flap; a replica that dies hands over
only its own tenants, and one that joins takes its share from those above theirs.

A replica then releases the tenants it holds that are assigned elsewhere (gracefully, at a cycle
boundary) and acquires the free tenants assigned to it. A tenant held by a replica that is no
longer live is taken only once its lease has expired (the holder may merely be slow).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def rendezvous_score(tenant: str, replica: str) -> int:
    """A stable pseudo-random weight of (tenant, replica): the highest wins."""
    digest = hashlib.sha256(f"{tenant}\0{replica}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def fair_share(tenants: int, replicas: int) -> int:
    return math.ceil(tenants / replicas) if replicas else tenants


def assignment(
    tenants: Sequence[str],
    replicas: Sequence[str],
    owners: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """Tenant -> the replica that should work it (every replica computes the same). Each
    replica gets floor(tenants / replicas) or one more (ceil: the fair share). A tenant stays
    with its current owner (`owners`) while that one is live and within its share, so a
    replica that dies or joins moves only what must move."""
    live = sorted(set(replicas))
    if not live:
        return {}
    names = sorted(set(tenants))
    slots = _Slots(live, len(names))
    out: dict[str, str] = {}
    for tenant in names:
        owner = (owners or {}).get(tenant)
        if owner in slots.load and slots.take(owner):
            out[tenant] = owner
    for tenant in (t for t in names if t not in out):
        ranked = sorted(live, key=lambda r: (-rendezvous_score(tenant, r), r))
        out[tenant] = next(r for r in ranked if slots.take(r))
    return out


class _Slots:
    """Room per replica: floor(n / replicas) each, plus one for the first `n % replicas`."""

    def __init__(self, replicas: Sequence[str], tenants: int) -> None:
        self.base, self.extra = divmod(tenants, len(replicas))
        self.load = dict.fromkeys(replicas, 0)

    def take(self, replica: str) -> bool:
        n = self.load[replica]
        if n < self.base:
            self.load[replica] = n + 1
            return True
        if n == self.base and self.extra > 0:
            self.extra -= 1
            self.load[replica] = n + 1
            return True
        return False


@dataclass(frozen=True, slots=True)
class Moves:
    acquire: tuple[str, ...] = ()
    release: tuple[str, ...] = ()


def plan(
    me: str,
    tenants: Sequence[str],
    replicas: Sequence[str],
    owners: Mapping[str, str | None],
) -> Moves:
    """What `me` should do now: `owners` maps each tenant to the replica holding its lease
    (None: free). Tenants `me` holds that are assigned elsewhere are released; free tenants
    assigned to `me` are acquired."""
    target = assignment(tenants, [*replicas, me], owners)
    mine = sorted(t for t in tenants if owners.get(t) == me)
    release = tuple(t for t in mine if target.get(t) != me)
    acquire = tuple(t for t in sorted(set(tenants)) if owners.get(t) is None and target[t] == me)
    return Moves(acquire=acquire, release=release)
