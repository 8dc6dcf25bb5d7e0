"""Interval statistics per visual queue in Redis: the pipeline's queue observer.

Each snapshot updates the tenant's `QueueIntervals`; the state, the intervals it closed (a hash
per local day) and their stream entries are written in one MULTI/EXEC transaction, so a
restart resumes the open interval from exactly the counters on file and no closed interval is
written or streamed twice.

Retention: the per-day hashes expire `retention` after their day; the stream is trimmed at
every append to the entries of the last `stream_retention` (`XADD ... MINID`, exact: a few
appends an hour per queue make it cheap; measured by the snapshots' time against the entry ids,
which are Redis's clock).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from monitor.core.keys import RedisKeys
from monitor.core.snapshots import QueueSnapshot
from monitor.history.intervals import QueueIntervals
from monitor.history.keys import SEP


class QueueIntervalRecorder:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        tenant: str,
        tz: ZoneInfo,
        width_minutes: int = 15,
        key_prefix: str = "pzm",
        retention: timedelta = timedelta(days=90),
        stream_retention: timedelta = timedelta(days=90),
    ) -> None:
        self._redis = redis
        self.tenant = tenant
        self.tz = tz
        self._keys = RedisKeys(key_prefix)
        self._width = width_minutes
        self._retention = retention
        self._stream_retention = stream_retention
        self._state: QueueIntervals | None = None

    async def _load(self) -> QueueIntervals:
        if self._state is None:
            raw = await self._redis.get(self._keys.queue_interval_state(self.tenant))
            self._state = (
                QueueIntervals.from_dict(json.loads(raw))
                if raw is not None
                else QueueIntervals(self._width)
            )
        return self._state

    async def on_queues(self, snapshot: QueueSnapshot) -> None:
        state = await self._load()
        closed = state.observe(snapshot.taken_at, snapshot.queues)
        k, t = self._keys, self.tenant
        pipe = self._redis.pipeline(transaction=True)
        min_id = max(0, int((snapshot.taken_at - self._stream_retention).timestamp() * 1000))
        for interval in closed:
            start = datetime.fromisoformat(interval["start"])
            day = start.astimezone(self.tz).date()
            doc = json.dumps(interval | {"start": start.astimezone(self.tz).isoformat()})
            pipe.hset(
                k.queue_intervals(t, day), f"{interval['queue']}{SEP}{interval['start']}", doc
            )
            pipe.expire(k.queue_intervals(t, day), int(self._retention.total_seconds()) + 86400)
            pipe.xadd(
                k.queue_interval_stream(t), {"interval": doc}, minid=min_id, approximate=False
            )
        pipe.set(k.queue_interval_state(t), json.dumps(state.to_dict()))
        await pipe.execute()

    async def read_day(self, day: date) -> list[dict[str, Any]]:
        raw = await self._redis.hgetall(self._keys.queue_intervals(self.tenant, day))
        return sorted((json.loads(v) for v in raw.values()), key=lambda d: (d["start"], d["queue"]))
