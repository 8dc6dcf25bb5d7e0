"""Approved exceptions: a supervisor excuses a time range of one agent, with a reason. Scheduled
time out of adherence inside an approved range counts as adherent in the records' approved
adherence (the raw figure stays). Approvals are withdrawn, never deleted, and every approval
and withdrawal is appended to the tenant's audit trail with who and when."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.history.store import HistoryStore


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
        pipe = self._h.redis.pipeline(transaction=True)
        pipe.hset(self._h.keys.approvals(tenant), doc["id"], json.dumps(doc))
        pipe.rpush(self._h.keys.approvals_audit(tenant), json.dumps(entry))
        await pipe.execute()

    async def active(self, tenant: str) -> list[dict[str, Any]]:
        raw = await self._h.redis.hgetall(self._h.keys.approvals(tenant))
        docs = [json.loads(v) for v in raw.values()]
        return sorted((d for d in docs if d["withdrawn_at"] is None), key=lambda d: d["start"])

    async def audit(self, tenant: str) -> list[dict[str, Any]]:
        return [
            json.loads(e)
            for e in await self._h.redis.lrange(self._h.keys.approvals_audit(tenant), 0, -1)
        ]
