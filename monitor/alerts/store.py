"""The open-alert table in Redis: the latest state of every alert, when each route last heard of
it (for repeats), which escalations went out. Read by the API, the repeat timer and the
Alertmanager re-sender; written by the outbox in the same transaction as its stream entries."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis

from monitor.alerts.model import Alert, parse_rfc3339, rfc3339
from monitor.core.keys import RedisKeys


@dataclass(frozen=True, slots=True)
class AlertRecord:
    alert: Alert
    updated_at: datetime
    last_sent: dict[str, datetime] = field(default_factory=dict)  # route name -> last enqueued
    seq: int = 0  # notifications enqueued for this episode after the first (repeats)
    escalated: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        data: dict[str, Any] = {
            "alert": self.alert.to_dict(),
            "updated_at": rfc3339(self.updated_at),
            "last_sent": {k: rfc3339(v) for k, v in self.last_sent.items()},
            "seq": self.seq,
            "escalated": list(self.escalated),
        }
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> AlertRecord:
        data = orjson.loads(raw)
        return cls(
            alert=Alert.from_dict(data["alert"]),
            updated_at=parse_rfc3339(data["updated_at"]),
            last_sent={k: parse_rfc3339(v) for k, v in data.get("last_sent", {}).items()},
            seq=int(data.get("seq", 0)),
            escalated=tuple(data.get("escalated", [])),
        )

    def with_(self, **changes: Any) -> AlertRecord:
        return replace(self, **changes)


_DELETE_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


class AlertStore:
    def __init__(self, redis: aioredis.Redis, *, key_prefix: str = "pzm") -> None:
        self._redis = redis
        self.key = RedisKeys(key_prefix).alerts()
        self._delete_if_same = redis.register_script(_DELETE_IF_SAME)

    async def get(self, fingerprint: str) -> AlertRecord | None:
        raw = await self._redis.hget(self.key, fingerprint)
        return AlertRecord.from_json(raw) if raw is not None else None

    async def all(self) -> list[AlertRecord]:
        raw = await self._redis.hgetall(self.key)
        records = [AlertRecord.from_json(v) for v in raw.values()]
        return sorted(records, key=lambda r: (r.alert.starts_at, r.alert.fingerprint))

    async def firing(self) -> list[AlertRecord]:
        return [r for r in await self.all() if r.alert.status == "firing"]

    async def forget_resolved(self, older_than: timedelta, now: datetime) -> int:
        """Drop resolved alerts whose end is more than `older_than` ago."""
        raw = await self._redis.hgetall(self.key)
        dropped = 0
        for fp, value in raw.items():
            record = AlertRecord.from_json(value)
            if record.alert.ends_at is not None and now - record.updated_at > older_than:
                # only if unchanged: a new episode may have replaced it meanwhile
                dropped += int(await self._delete_if_same(keys=[self.key], args=[fp, value]))
        return dropped
