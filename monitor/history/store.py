"""The adherence history in Redis: written from the engine's accruals and transitions as they
happen, read by the reports.

A cycle's increments and the agents' new watermarks go in one MULTI/EXEC transaction, so the
records and the watermark never disagree: after a restart, the time the engine re-accounts from
its older saved state is clipped at the watermark instead of being counted again. Exceptions
are keyed by rule, subject and start, so a re-emitted transition rewrites the same document.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from monitor.core.clock import Clock
from monitor.core.keys import RedisKeys
from monitor.engine.model import Accrual, AlertTransition
from monitor.history.filing import Filed, day_bounds, file_accruals
from monitor.history.keys import SEP

DEFAULT_RETENTION = timedelta(days=90)
KINDS = ("agents", "teams", "slots", "exceptions", "outs")
# Joins each hash's fields and values with _JOIN, server side (see read_days). Field names and
# values never hold it: ids and team names are printable, values are numbers or JSON.
_JOIN = "\x1e"
_JOINED = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = table.concat(redis.call('HGETALL', key), ARGV[1])
end
return out
"""


class HistoryStore:
    """Reads and writes the history of every tenant; `recorder(tenant)` binds the writers."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        tenants: dict[str, ZoneInfo],
        clock: Clock,
        key_prefix: str = "pzm",
        retention: timedelta = DEFAULT_RETENTION,
        approvals_retention: timedelta = DEFAULT_RETENTION,
        stream_retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self.redis = redis
        self.tenants = tenants
        self.clock = clock
        self.key_prefix = key_prefix
        self.keys = RedisKeys(key_prefix)
        self.retention = retention
        # approvals and their audit trail: after an approval's end, after an entry's writing
        self.approvals_retention = approvals_retention
        # the queue-interval stream's entries (the per-day interval hashes follow `retention`)
        self.stream_retention = stream_retention

    def recorder(self, tenant: str) -> HistoryRecorder:
        return HistoryRecorder(self, tenant, self.tenants[tenant])

    def ttl(self, day: date, tz: ZoneInfo) -> int:
        """Seconds the day's keys live: until `retention` after the day ends, by the injected
        clock (a replayed day of the past is then kept as long as a live one)."""
        left = day_bounds(day, tz)[1] + self.retention - self.clock.now()
        return max(1, int(left.total_seconds()))

    async def read_day(self, tenant: str, day: date) -> dict[str, dict[str, Any]]:
        """The day's hashes, decoded: agents, teams, slots, exceptions and outs."""
        (out,) = await self.read_days(tenant, [day])
        return out

    async def read_days(
        self, tenant: str, days: Sequence[date], kinds: Sequence[str] = KINDS
    ) -> list[dict[str, dict[str, Any]]]:
        """The days' hashes of `kinds` (a subset of `KINDS`), decoded, in one round trip.

        Each hash comes back as one string joined in Redis (`_JOINED`): a month of 1,000 agents
        is some 600,000 field names and values, and redis-py's RESP parser (pure Python
        without hiredis) spends about 5 µs on each, seconds in all; one string per hash is
        split in C instead."""
        k = self.keys
        key_of = {
            "agents": k.history_agents, "teams": k.history_teams, "slots": k.history_slots,
            "exceptions": k.history_exceptions, "outs": k.history_outs,
        }  # fmt: skip
        keys = [key_of[kind](tenant, day) for day in days for kind in kinds]
        joined = await self.redis.eval(_JOINED, len(keys), *keys, _JOIN)
        out: list[dict[str, dict[str, Any]]] = []
        it = iter(joined)
        for _ in days:
            day_out: dict[str, dict[str, Any]] = {}
            for kind in kinds:
                fields = _split(next(it))
                day_out[kind] = (
                    {f: json.loads(v) for f, v in fields.items()}
                    if kind == "exceptions"
                    else fields
                )
            out.append(day_out)
        return out

    async def iter_days(
        self, tenant: str, days: Sequence[date], kinds: Sequence[str] = KINDS, chunk: int = 5
    ) -> AsyncIterator[tuple[date, dict[str, dict[str, Any]]]]:
        """`read_days` a few days at a time, the next few asked for before these are handed
        out: Redis joins them while the caller works on these (a month's report overlaps its
        Redis and its Python halves)."""
        parts = [days[i : i + chunk] for i in range(0, len(days), chunk)]
        if not parts:
            return
        ahead = asyncio.ensure_future(self.read_days(tenant, parts[0], kinds))
        for i, part in enumerate(parts):
            got = await ahead
            if i + 1 < len(parts):
                ahead = asyncio.ensure_future(self.read_days(tenant, parts[i + 1], kinds))
                await asyncio.sleep(0)  # let it send its request before the caller's work
            for pair in zip(part, got, strict=True):
                yield pair


def _split(raw: bytes | str) -> dict[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    if not text:
        return {}
    parts = text.split(_JOIN)
    return dict(zip(parts[::2], parts[1::2], strict=True))


async def stored_timezone(
    redis: aioredis.Redis, tenant: str, key_prefix: str = "pzm"
) -> str | None:
    raw = await redis.get(RedisKeys(key_prefix).history_timezone(tenant))
    return raw.decode() if isinstance(raw, bytes) else raw


def _decode(h: dict[Any, Any]) -> dict[str, str]:
    def s(x: Any) -> str:
        return x.decode() if isinstance(x, bytes) else str(x)

    return {s(f): s(v) for f, v in h.items()}


class HistoryRecorder:
    """One tenant's writer: the pipeline's accrual and transition observer."""

    def __init__(self, store: HistoryStore, tenant: str, tz: ZoneInfo) -> None:
        self._store = store
        self.tenant = tenant
        self.tz = tz
        self._marks: dict[str, float] | None = None  # loaded from Redis on first use
        # agent -> the start of the shift of its latest piece, to file its exceptions by shift
        self._anchors: dict[str, datetime] = {}
        # agent -> (day, start, end) of its latest out-of-adherence range on file, to extend it
        self._last_out: dict[str, tuple[date, float, float]] = {}
        self._pending: list[Accrual] = []
        self._flushing = asyncio.Lock()

    async def _watermarks(self) -> dict[str, float]:
        if self._marks is None:
            raw = await self._store.redis.hgetall(self._store.keys.history_watermark(self.tenant))
            self._marks = {f: float(v) for f, v in _decode(raw).items()}
        return self._marks

    async def record_accruals(self, accruals: Sequence[Accrual]) -> None:
        """Buffered until `flush`, which the pipeline runs before it saves the engine state:
        one write then carries many cycles, and the time on file never trails the state."""
        self._pending.extend(accruals)
        for acc in accruals:
            anchors = [p.shift_start for p in acc.pieces if p.shift_start is not None]
            if anchors:
                self._anchors[acc.agent_id] = anchors[-1]

    async def flush(self) -> None:
        # Persists overlap (a cycle's and housekeeping's): one flush at a time, and the batch
        # taken before the first await, or two flushes would write the same accruals.
        async with self._flushing:
            pending, self._pending = self._pending, []
            if not pending:
                return
            try:
                marks = await self._watermarks()
                filed = file_accruals(pending, self.tz, marks)
                if filed.watermarks:
                    await self._write(filed)
                    marks.update(filed.watermarks)
            except BaseException:
                self._pending[:0] = pending  # kept for the next flush (Redis may be back)
                raise

    async def _write(self, filed: Filed) -> None:
        k, t = self._store.keys, self.tenant
        pipe = self._store.redis.pipeline(transaction=True)
        for kind, by_day in (("agents", filed.agents), ("teams", filed.teams)):
            for day, fields in by_day.items():
                key = k.history_agents(t, day) if kind == "agents" else k.history_teams(t, day)
                for f, v in fields.items():
                    pipe.hincrbyfloat(key, f, v)
        for day, fields in filed.slots.items():
            for f, v in fields.items():
                pipe.hincrbyfloat(k.history_slots(t, day), f, v)
        for day, teams in filed.agent_teams.items():
            pipe.hset(k.history_agents(t, day), mapping=teams)  # type: ignore[arg-type]
        pipe.hset(k.history_watermark(t), mapping=filed.watermarks)  # type: ignore[arg-type]
        pipe.set(k.history_timezone(t), self.tz.key)
        self._write_outs(pipe, filed)
        for day in filed.days():
            ttl = self._store.ttl(day, self.tz)
            for key in (k.history_agents(t, day), k.history_teams(t, day), k.history_slots(t, day)):
                pipe.expire(key, ttl)
        await pipe.execute()

    def _write_outs(self, pipe: Any, filed: Filed) -> None:
        k, t = self._store.keys, self.tenant
        for (day, agent), ranges in filed.outs.items():
            for a, b in ranges:
                last = self._last_out.get(agent)
                start = last[1] if last is not None and last[0] == day and last[2] == a else a
                pipe.hset(k.history_outs(t, day), f"{agent}{SEP}{start!r}", repr(b))
                self._last_out[agent] = (day, start, b)
            pipe.expire(k.history_outs(t, day), self._store.ttl(day, self.tz))

    async def record_transitions(self, transitions: Sequence[AlertTransition]) -> None:
        mine = [t for t in transitions if t.tenant == self.tenant]
        if not mine:
            return
        pipe = self._store.redis.pipeline(transaction=True)
        for t in mine:
            day = self._day_of(t)
            key = self._store.keys.history_exceptions(self.tenant, day)
            field = SEP.join((t.rule.value, t.subject, t.subject_id, t.condition_since.isoformat()))
            doc = json.dumps(self._exception(t))
            if t.status == "firing":
                pipe.hsetnx(key, field, doc)  # never over a resolved one re-emitted earlier
            else:
                pipe.hset(key, field, doc)
            pipe.expire(key, self._store.ttl(day, self.tz))
        await pipe.execute()

    def _day_of(self, t: AlertTransition) -> date:
        anchor = self._anchors.get(t.subject_id) if t.subject == "agent" else None
        start = t.condition_since
        if anchor is not None and anchor <= start:
            return anchor.astimezone(self.tz).date()
        return start.astimezone(self.tz).date()

    def _exception(self, t: AlertTransition) -> dict[str, Any]:
        start = t.condition_since.astimezone(UTC)
        end = t.ideal_at.astimezone(UTC) if t.status == "resolved" else None
        return {
            "rule": t.rule.value,
            "subject": t.subject,
            "subject_id": t.subject_id,
            "team": t.team,
            "severity": t.severity,
            "start": start.isoformat(),
            "end": end.isoformat() if end else None,
            "duration_seconds": (end - start).total_seconds() if end else None,
            # who ended it, when not the agent: "approved by ana: team meeting"
            "resolution": t.details.get("resolution") if end else None,
        }
