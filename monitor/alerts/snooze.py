"""Snoozes and acknowledgements, kept in Redis with a TTL.

- snooze an alert (by fingerprint) or an agent (tenant + agent) until a time: no notifications
  for it (first, repeats, escalations) until then;
- acknowledge an alert: no repeats or escalations for this episode of it (same `startsAt`), until
  it resolves or the acknowledgement expires.

Resolves still go out to a sink that was told about the firing: they are good news.
Expiry is judged on the injected clock (the value holds `until`); the Redis TTL only cleans up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import orjson
import redis.asyncio as aioredis

from monitor.alerts.model import Alert, parse_rfc3339, rfc3339
from monitor.core.clock import Clock
from monitor.core.keys import RedisKeys

Kind = Literal["snooze", "ack"]
MAX_ACK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Mute:
    kind: Kind | Literal["agent_snooze"]
    until: datetime
    by: str | None = None
    starts_at: str | None = None  # acks apply to one episode only


class SnoozeStore:
    def __init__(self, redis: aioredis.Redis, *, clock: Clock, key_prefix: str = "pzm") -> None:
        self._redis = redis
        self._clock = clock
        self._keys = RedisKeys(key_prefix)

    def _alert_key(self, kind: Kind, fp: str) -> str:
        return self._keys.alert_mute(kind, fp)

    def _agent_key(self, tenant: str, agent: str) -> str:
        return self._keys.agent_snooze(tenant, agent)

    async def _put(self, key: str, mute: Mute) -> None:
        ttl = mute.until - self._clock.now()
        if ttl <= timedelta(0):
            raise ValueError(f"'until' must be in the future, got {rfc3339(mute.until)}")
        value = {"kind": mute.kind, "until": rfc3339(mute.until), "by": mute.by}
        if mute.starts_at:
            value["starts_at"] = mute.starts_at
        # an hour of slack: a virtual clock may run behind Redis's own
        await self._redis.set(key, orjson.dumps(value), ex=int(ttl.total_seconds()) + 3600)

    async def _get(self, key: str) -> Mute | None:
        raw = await self._redis.get(key)
        if raw is None:
            return None
        data = orjson.loads(raw)
        mute = Mute(
            data["kind"], parse_rfc3339(data["until"]), data.get("by"), data.get("starts_at")
        )
        return mute if mute.until > self._clock.now() else None

    async def snooze_alert(
        self, fingerprint: str, until: datetime, *, by: str | None = None
    ) -> Mute:
        mute = Mute("snooze", until, by)
        await self._put(self._alert_key("snooze", fingerprint), mute)
        return mute

    async def ack_alert(
        self, alert: Alert, *, until: datetime | None = None, by: str | None = None
    ) -> Mute:
        until = until or self._clock.now() + MAX_ACK
        mute = Mute("ack", until, by, rfc3339(alert.starts_at))
        await self._put(self._alert_key("ack", alert.fingerprint), mute)
        return mute

    async def snooze_agent(
        self, tenant: str, agent: str, until: datetime, *, by: str | None = None
    ) -> Mute:
        mute = Mute("agent_snooze", until, by)
        await self._put(self._agent_key(tenant, agent), mute)
        return mute

    async def unsnooze_alert(self, fingerprint: str) -> bool:
        return bool(await self._redis.delete(self._alert_key("snooze", fingerprint)))

    async def unack_alert(self, fingerprint: str) -> bool:
        return bool(await self._redis.delete(self._alert_key("ack", fingerprint)))

    async def unsnooze_agent(self, tenant: str, agent: str) -> bool:
        return bool(await self._redis.delete(self._agent_key(tenant, agent)))

    async def mutes(self, alert: Alert) -> list[Mute]:
        """Every snooze or acknowledgement in force for `alert` now."""
        out: list[Mute] = []
        snooze = await self._get(self._alert_key("snooze", alert.fingerprint))
        if snooze:
            out.append(snooze)
        ack = await self._get(self._alert_key("ack", alert.fingerprint))
        if ack and ack.starts_at == rfc3339(alert.starts_at):
            out.append(ack)
        agent = alert.labels.get("agent")
        if agent:
            by_agent = await self._get(self._agent_key(alert.labels.get("tenant", ""), agent))
            if by_agent:
                out.append(by_agent)
        return out

    async def muted(self, alert: Alert) -> str | None:
        """Why notifications about `alert` are muted now (`snooze`, `ack`, `agent_snooze`)."""
        mutes = await self.mutes(alert)
        return mutes[0].kind if mutes else None
