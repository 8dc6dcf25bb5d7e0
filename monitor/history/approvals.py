"""Approved exceptions: a supervisor excuses a time range of one agent, with a reason. Scheduled
time out of adherence inside an approved range counts as adherent in the records' approved
adherence (the raw figure stays). Approvals are withdrawn, never deleted by hand, and every
approval and withdrawal is appended to the tenant's audit trail with who and when.

The engine sees them too (`ranges`, reloaded when `version` moves): an approval that covers
the present resolves the agent's open exceptions (`monitor.engine.approvals`).

Retention (`HistoryStore.approvals_retention`, default 90 days): an approval is dropped that
long after its range ended (or after it was made or withdrawn, if later: an old range approved
today is kept as long as one of today), an audit entry that long after it was written. Each
write prunes, and the keys expire that long after the last write, so a tenant nobody approves
for leaves nothing behind."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.engine.model import ApprovedRange
from monitor.history.store import HistoryStore

AUDIT_PRUNE_BATCH = 500


@dataclass(frozen=True)
class ApprovalRequest:
    agent: str
    start: datetime
    end: datetime
    reason: str
    by: str


class ApprovalStore:
    def __init__(self, history: HistoryStore) -> None:
        self._h = history

    async def approve(self, tenant: str, req: ApprovalRequest) -> dict[str, Any]:
        doc = {
            "id": secrets.token_hex(8),
            "tenant": tenant,
            "agent": req.agent,
            "start": req.start.isoformat(),
            "end": req.end.isoformat(),
            "reason": req.reason,
            "by": req.by,
            "at": self._h.clock.now().isoformat(),
            "withdrawn_by": None,
            "withdrawn_at": None,
        }
        await self._save(tenant, doc, "approve", req.by)
        return doc

    async def withdraw(self, tenant: str, approval_id: str, by: str) -> dict[str, Any] | None:
        """The withdrawn approval; None if there is no such approval or it is withdrawn."""
        raw = await self._h.redis.hget(self._h.keys.approvals(tenant), approval_id)
        if raw is None:
            return None
        doc: dict[str, Any] = json.loads(raw)
        if doc["withdrawn_at"] is not None:
            return None
        doc |= {"withdrawn_by": by, "withdrawn_at": self._h.clock.now().isoformat()}
        await self._save(tenant, doc, "withdraw", by)
        return doc

    async def _save(self, tenant: str, doc: dict[str, Any], action: str, by: str) -> None:
        entry = {"action": action, "by": by, "at": self._h.clock.now().isoformat()} | {
            k: doc[k] for k in ("id", "agent", "start", "end", "reason")
        }
        k = self._h.keys
        keep = max(1, int(self._h.approvals_retention.total_seconds()))
        pipe = self._h.redis.pipeline(transaction=True)
        pipe.hset(k.approvals(tenant), doc["id"], json.dumps(doc))
        pipe.rpush(k.approvals_audit(tenant), json.dumps(entry))
        pipe.incr(k.approvals_version(tenant))
        pipe.expire(k.approvals_audit(tenant), keep)
        await pipe.execute()
        await self.prune(tenant)

    async def prune(self, tenant: str) -> int:
        """Drop the approvals and audit entries past their retention; the number dropped."""
        k, now = self._h.keys, self._h.clock.now()
        cutoff = now - self._h.approvals_retention
        raw = await self._h.redis.hgetall(k.approvals(tenant))
        last = {f: _last_touched(json.loads(v)) for f, v in raw.items()}
        old = [f for f, t in last.items() if t < cutoff]
        pipe = self._h.redis.pipeline(transaction=True)
        if old:
            pipe.hdel(k.approvals(tenant), *old)
        ends = [t for f, t in last.items() if f not in old]
        if ends:  # the hash lives until its last approval's retention is over
            pipe.expire(k.approvals(tenant), max(1, int((max(ends) - cutoff).total_seconds())))
        await pipe.execute()
        return len(old) + await self._prune_audit(tenant, cutoff)

    async def _prune_audit(self, tenant: str, cutoff: datetime) -> int:
        key, dropped = self._h.keys.approvals_audit(tenant), 0
        while True:  # the trail is in time order: drop its too-old head
            head = await self._h.redis.lrange(key, 0, AUDIT_PRUNE_BATCH - 1)
            n = next(
                (
                    i
                    for i, e in enumerate(head)
                    if datetime.fromisoformat(json.loads(e)["at"]) >= cutoff
                ),
                len(head),
            )
            if n:
                await self._h.redis.ltrim(key, n, -1)
                dropped += n
            if n < AUDIT_PRUNE_BATCH:
                return dropped

    async def version(self, tenant: str) -> int:
        raw = await self._h.redis.get(self._h.keys.approvals_version(tenant))
        return int(raw) if raw is not None else 0

    async def ranges(self, tenant: str, since: datetime) -> dict[str, list[ApprovedRange]]:
        """The engine's view, per agent: every approval whose effective range (to its end, or
        its withdrawal if earlier) ends after `since`. Withdrawn ones are kept up to their
        withdrawal: a withdrawal ends the excuse from then on and does not reach back."""
        out: dict[str, list[ApprovedRange]] = {}
        for raw in (await self._h.redis.hgetall(self._h.keys.approvals(tenant))).values():
            d = json.loads(raw)
            end = datetime.fromisoformat(d["end"])
            if d.get("withdrawn_at"):
                end = min(end, datetime.fromisoformat(d["withdrawn_at"]))
            start = datetime.fromisoformat(d["start"])
            if end > since and end > start:
                out.setdefault(d["agent"], []).append(
                    ApprovedRange(d["agent"], start, end, d["by"], d["reason"])
                )
        for windows in out.values():
            windows.sort(key=lambda w: (w.start, w.end))
        return out

    async def active(self, tenant: str) -> list[dict[str, Any]]:
        raw = await self._h.redis.hgetall(self._h.keys.approvals(tenant))
        docs = [json.loads(v) for v in raw.values()]
        return sorted((d for d in docs if d["withdrawn_at"] is None), key=lambda d: d["start"])

    async def audit(self, tenant: str) -> list[dict[str, Any]]:
        return [
            json.loads(e)
            for e in await self._h.redis.lrange(self._h.keys.approvals_audit(tenant), 0, -1)
        ]


def _last_touched(doc: dict[str, Any]) -> datetime:
    """What an approval's retention runs from: the latest of its end, making and withdrawal."""
    times = [doc["end"], doc["at"], doc.get("withdrawn_at")]
    return max(datetime.fromisoformat(t) for t in times if t)
