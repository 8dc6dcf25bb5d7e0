"""Schedules in Redis, per tenant, stored as UTC and filed by local date.

Key layout (documented in docs/schedules.md; `P` = key prefix, `T` = tenant):

- `P:T:sched:seg:<agent>:<YYYY-MM-DD>`  sorted set: one agent's segments that START on that local
  date; score = start (epoch seconds), member = `<start>|<end>|<activity>` (epoch seconds).
- `P:T:sched:agents:<YYYY-MM-DD>`       set: agents with a segment starting on that local date.
- `P:T:sched:timeline`                  sorted set of all segments, score = start, member =
  `<agent>|<start>|<end>|<activity>`: answers "what overlaps this window" in one range read.
- `P:T:sched:maxlen`                    longest segment ever written, in seconds (how far back a
  window read must look for segments that started before it and still run).
- `P:T:sched:version`                   counter bumped by every write, for readers that cache.

Writes are optimistic transactions (WATCH the keys read, then MULTI/EXEC), so a reader never
sees half of a replacement and two concurrent writers cannot interleave.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from monitor.core.keys import RedisKeys
from monitor.engine.model import Segment
from monitor.schedules.errors import ImportIssue, ScheduleImportError
from monitor.schedules.localtime import local_date, local_midnight
from monitor.schedules.plan import ImportPlan, check_span

_TENANT = re.compile(r"^[A-Za-z0-9_.@-]+$")
_FORBIDDEN = re.compile(r"[\s|]")
_MAX_RETRIES = 50


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_epoch(seconds: str) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def check_identifier(kind: str, value: str) -> None:
    """Agent ids and activity names go into keys and `|`-separated members: no `|`, no blanks."""
    if not value or _FORBIDDEN.search(value):
        raise ValueError(f"invalid {kind} {value!r}: must be non-empty, without blanks or '|'")


@dataclass(frozen=True, slots=True)
class ReplaceResult:
    removed: int  # segments that were stored for the replaced agent-days
    added: int
    version: int  # the tenant's schedule version after the write


class ScheduleStore:
    """Reads and atomic replacements of tenants' schedules."""

    def __init__(self, redis: aioredis.Redis, *, key_prefix: str = "pzm") -> None:
        self._redis = redis
        self._keys = RedisKeys(key_prefix)

    # -- keys -------------------------------------------------------------------------------

    @staticmethod
    def _tenant(tenant: str) -> str:
        if not _TENANT.match(tenant):
            raise ValueError(f"invalid tenant {tenant!r}")
        return tenant

    def segments_key(self, tenant: str, agent_id: str, day: date) -> str:
        return self._keys.schedule_segments(self._tenant(tenant), agent_id, day)

    def agents_key(self, tenant: str, day: date) -> str:
        return self._keys.schedule_agents(self._tenant(tenant), day)

    def timeline_key(self, tenant: str) -> str:
        return self._keys.schedule_timeline(self._tenant(tenant))

    def maxlen_key(self, tenant: str) -> str:
        return self._keys.schedule_maxlen(self._tenant(tenant))

    def version_key(self, tenant: str) -> str:
        return self._keys.schedule_version(self._tenant(tenant))

    # -- reads ------------------------------------------------------------------------------

    async def version(self, tenant: str) -> int:
        raw = await self._redis.get(self.version_key(tenant))
        return int(raw) if raw is not None else 0

    async def segments_between(
        self, tenant: str, start: datetime, end: datetime
    ) -> dict[str, list[Segment]]:
        """Every segment overlapping [start, end), by agent, each list sorted by start."""
        maxlen = await self._redis.get(self.maxlen_key(tenant))
        lookback = int(maxlen) if maxlen is not None else 0
        members = await self._redis.zrangebyscore(
            self.timeline_key(tenant), _epoch(start) - lookback, f"({math.ceil(end.timestamp())}"
        )
        out: dict[str, list[Segment]] = defaultdict(list)
        for raw in members:
            agent, s, e, activity = _text(cast(bytes | str, raw)).split("|")
            seg = Segment(_from_epoch(s), _from_epoch(e), agent, activity)
            if seg.end > start and seg.start < end:
                out[agent].append(seg)
        return {a: sorted(v) for a, v in out.items()}

    async def segments_for_day(
        self, tenant: str, tz: tzinfo, day: date
    ) -> dict[str, list[Segment]]:
        """What is scheduled on local `day`: the segments starting on it plus those of the day
        before that run into it, by agent."""
        prev = day - timedelta(days=1)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.smembers(self.agents_key(tenant, day))
            pipe.smembers(self.agents_key(tenant, prev))
            today_raw, prev_raw = await pipe.execute()
        today = sorted(_text(a) for a in today_raw)
        before = sorted(_text(a) for a in prev_raw)
        keys = [(a, self.segments_key(tenant, a, day)) for a in today]
        keys += [(a, self.segments_key(tenant, a, prev)) for a in before]
        found = await self._read_buckets(keys)
        begins = local_midnight(day, tz)
        out: dict[str, list[Segment]] = {}
        for agent, segs in found.items():
            kept = [s for s in segs if s.end > begins]
            if kept:
                out[agent] = sorted(kept)
        return out

    async def agent_day(self, tenant: str, tz: tzinfo, agent_id: str, day: date) -> list[Segment]:
        """One agent's local `day`, including a shift from the day before that runs into it."""
        prev = day - timedelta(days=1)
        found = await self._read_buckets(
            [
                (agent_id, self.segments_key(tenant, agent_id, prev)),
                (agent_id, self.segments_key(tenant, agent_id, day)),
            ]
        )
        begins = local_midnight(day, tz)
        return sorted(s for s in found.get(agent_id, []) if s.end > begins)

    async def current(self, tenant: str, agent_id: str, now: datetime) -> Segment | None:
        """The segment `agent_id` is scheduled for at `now`, if any."""
        # now's local date is within a day of its UTC date in any zone, and the segment running
        # at now started on that local date or the day before
        utc_day = now.astimezone(UTC).date()
        days = [utc_day + timedelta(days=d) for d in (-2, -1, 0, 1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for d in days:
                pipe.zrevrangebyscore(
                    self.segments_key(tenant, agent_id, d), _epoch(now), "-inf", start=0, num=1
                )
            results = await pipe.execute()
        best: Segment | None = None
        for members in results:
            for raw in members:
                seg = _parse_member(agent_id, raw)
                if seg.start <= now < seg.end and (best is None or seg.start > best.start):
                    best = seg
        return best

    async def _read_buckets(self, keys: list[tuple[str, str]]) -> dict[str, list[Segment]]:
        if not keys:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, key in keys:
                pipe.zrange(key, 0, -1)
            results = await pipe.execute()
        out: dict[str, list[Segment]] = defaultdict(list)
        for (agent, _), members in zip(keys, results, strict=True):
            out[agent].extend(_parse_member(agent, m) for m in members)
        return dict(out)

    # -- writes -----------------------------------------------------------------------------

    async def apply(self, tenant: str, plan: ImportPlan) -> ReplaceResult:
        """Write a validated import plan: its agents' schedules on its dates become its segments."""
        return await self.replace(
            tenant, plan.tz, plan.segments, agents=set(plan.agents), dates=set(plan.dates)
        )

    async def delete_agent_day(
        self, tenant: str, tz: tzinfo, agent_id: str, day: date
    ) -> ReplaceResult:
        """Remove the segments of `agent_id` that start on local `day`."""
        return await self.replace(tenant, tz, [], agents={agent_id}, dates={day})

    async def replace(
        self,
        tenant: str,
        tz: tzinfo,
        segments: Iterable[Segment],
        *,
        agents: set[str] | None = None,
        dates: set[date] | None = None,
    ) -> ReplaceResult:
        """Atomically make `segments` the whole schedule of `agents` on local `dates`.

        Each segment is filed under the local date it starts on. `agents` and `dates` default to
        those of the segments; every segment must fall within them. Raises ValueError for a
        malformed segment and ScheduleImportError if a new segment would overlap a stored one
        that this call does not replace (a shift from the day before, or the next day's start).
        """
        segs, new, replaced = _buckets(segments, tz, agents, dates)
        neighbours = _neighbours(new, replaced, tz)
        seg_key = {b: self.segments_key(tenant, *b) for b in replaced | neighbours}
        # Every write of a tenant's schedules goes through here and increments its version in
        # the same MULTI, so watching the version catches any concurrent writer. Watching each
        # agent-day key instead cost redis-server 7.0 time quadratic in their number (it
        # searches the client's watched keys for each one): seconds at 10,000 agents, during
        # which Redis answers nobody else (leases, the outbox).
        watch = [self.version_key(tenant), self.maxlen_key(tenant)]
        replaced_list = sorted(replaced)
        neighbour_list = sorted(neighbours)
        async with self._redis.pipeline(transaction=True) as tx:
            for _ in range(_MAX_RETRIES):
                try:
                    await tx.watch(*watch)
                    async with self._redis.pipeline(transaction=False) as rd:
                        for b in replaced_list + neighbour_list:
                            rd.zrange(seg_key[b], 0, -1)
                        rd.get(self.maxlen_key(tenant))
                        *stored, maxlen_raw = await rd.execute()
                    old = dict(zip(replaced_list, stored[: len(replaced_list)], strict=True))
                    kept = dict(zip(neighbour_list, stored[len(replaced_list) :], strict=True))
                    conflicts = _conflicts(new, kept, tz)
                    if conflicts:
                        raise ScheduleImportError(conflicts)
                    tx.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    removed = self._queue_replace(tx, tenant, new, old, seg_key)
                    longest = max((_epoch(s.end) - _epoch(s.start) for s in segs), default=0)
                    if longest > (int(maxlen_raw) if maxlen_raw is not None else 0):
                        tx.set(self.maxlen_key(tenant), longest)
                    tx.incr(self.version_key(tenant))
                    result = await tx.execute()
                    return ReplaceResult(removed=removed, added=len(segs), version=int(result[-1]))
                except WatchError:
                    continue
        raise RuntimeError(f"schedule write for tenant {tenant} kept conflicting; try again")

    def _queue_replace(
        self,
        tx: Any,
        tenant: str,
        new: Mapping[tuple[str, date], list[Segment]],
        old: Mapping[tuple[str, date], list[Any]],
        seg_key: Mapping[tuple[str, date], str],
    ) -> int:
        """Queue, in the open transaction, the removal of the replaced agent-days and the
        writing of the new ones. Returns the number of segments removed."""
        timeline = self.timeline_key(tenant)
        removed = 0
        for b, members in sorted(old.items()):
            removed += len(members)
            if members:
                tx.zrem(timeline, *(f"{b[0]}|{_text(m)}" for m in members))
                tx.delete(seg_key[b])
            if b not in new:
                tx.srem(self.agents_key(tenant, b[1]), b[0])
        for b, bucket_segs in new.items():
            tx.zadd(seg_key[b], {_member(s): _epoch(s.start) for s in bucket_segs})
            tx.zadd(timeline, {f"{b[0]}|{_member(s)}": _epoch(s.start) for s in bucket_segs})
            tx.sadd(self.agents_key(tenant, b[1]), b[0])
        return removed


def _buckets(
    segments: Iterable[Segment],
    tz: tzinfo,
    agents: set[str] | None,
    dates: set[date] | None,
) -> tuple[list[Segment], dict[tuple[str, date], list[Segment]], set[tuple[str, date]]]:
    """Validate the segments and file them by (agent, local start date); the agent-days
    replaced. Raises ValueError naming the first bad segment."""
    segs = sorted(_normalise(s) for s in segments)
    for s in segs:
        check_identifier("agent id", s.agent_id)
        check_identifier("activity", s.activity)
        why = check_span(s, tz)
        if why:
            raise ValueError(f"segment {s}: {why}")
    agent_set = set(agents) if agents is not None else {s.agent_id for s in segs}
    date_set = set(dates) if dates is not None else {local_date(s.start, tz) for s in segs}
    for a in agent_set:
        check_identifier("agent id", a)
    new: dict[tuple[str, date], list[Segment]] = defaultdict(list)
    for s in segs:
        bucket = (s.agent_id, local_date(s.start, tz))
        if bucket[0] not in agent_set or bucket[1] not in date_set:
            raise ValueError(
                f"segment {s} (local date {bucket[1]}) is outside the agents/dates replaced"
            )
        new[bucket].append(s)
    return segs, new, {(a, d) for a in agent_set for d in date_set}


def _normalise(s: Segment) -> Segment:
    if s.start.tzinfo is None or s.end.tzinfo is None:
        raise ValueError(f"segment {s} has a naive time; segments are timezone-aware UTC")
    if s.start.microsecond or s.end.microsecond:
        raise ValueError(f"segment {s}: fractions of a second are not supported")
    return Segment(s.start.astimezone(UTC), s.end.astimezone(UTC), s.agent_id, s.activity)


def _member(s: Segment) -> str:
    return f"{_epoch(s.start)}|{_epoch(s.end)}|{s.activity}"


def _parse_member(agent: str, raw: bytes | str) -> Segment:
    s, e, activity = _text(raw).split("|")
    return Segment(_from_epoch(s), _from_epoch(e), agent, activity)


def _neighbours(
    new: dict[tuple[str, date], list[Segment]], replaced: set[tuple[str, date]], tz: tzinfo
) -> set[tuple[str, date]]:
    """Agent-days kept as they are that new segments could collide with: the day before (its
    last shift may run past midnight) and, for segments running past midnight, the day after."""
    out: set[tuple[str, date]] = set()
    for (agent, day), segs in new.items():
        prev = (agent, day - timedelta(days=1))
        if prev not in replaced:
            out.add(prev)
        nxt = (agent, day + timedelta(days=1))
        if nxt not in replaced and any(s.end > local_midnight(nxt[1], tz) for s in segs):
            out.add(nxt)
    return out


def _conflicts(
    new: dict[tuple[str, date], list[Segment]],
    kept: dict[tuple[str, date], list[bytes | str]],
    tz: tzinfo,
) -> list[ImportIssue]:
    issues: list[ImportIssue] = []
    for (agent, day), members in kept.items():
        stored = [_parse_member(agent, m) for m in members]
        candidates = [
            s
            for d in (day - timedelta(days=1), day + timedelta(days=1))
            for s in new.get((agent, d), [])
        ]
        for n in candidates:
            for s in stored:
                if n.start < s.end and s.start < n.end:
                    issues.append(
                        ImportIssue(
                            "stored schedule",
                            f"agent {agent}",
                            f"new segment {_show(n, tz)} overlaps the stored segment "
                            f"{_show(s, tz)} of {day}, which this import does not replace",
                        )
                    )
    return issues


def _show(s: Segment, tz: tzinfo) -> str:
    a, b = s.start.astimezone(tz), s.end.astimezone(tz)
    return f"{a:%Y-%m-%d %H:%M}–{b:%H:%M} {s.activity}"
