"""The MCP tools themselves, free of the SDK: a grant and arguments in, a small dict out.

Answers carry what the dashboards already show about an agent (id, name, team, state) and
nothing more; a token restricted to tenants or teams sees only those, and is told so.
Acknowledging and snoozing call the same functions as the HTTP API (`monitor.alerts.api`);
approving and withdrawing write the same approvals (`monitor.history.approvals`), with the
token's name as who (`mcp:<name>`), so they are in the approvals' audit trail as well as in
the MCP audit stream.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.alerts.api import open_alert, until_from
from monitor.alerts.model import Alert, rfc3339
from monitor.alerts.snooze import Mute
from monitor.core.snapshots import QueueObservation
from monitor.core.states import AgentState
from monitor.engine.engine import AgentMemory
from monitor.engine.model import Accrual
from monitor.history.approvals import ApprovalStore
from monitor.history.approvals_api import request_from
from monitor.ingest.pollers import TenantPollers
from monitor.mcp.tokens import Grant
from monitor.mcp.view import MonitorView

MAX_ROWS = 200  # answers stay small enough for a model's context
SCHEDULE_WINDOW = timedelta(hours=12)


class Denied(Exception):
    """The token does not reach this tenant, team or tool."""


class NotFound(Exception):
    pass


def _iso(when: datetime | None) -> str | None:
    return rfc3339(when) if when is not None else None


def _state(state: AgentState) -> str:
    return f"{state.kind.value}:{state.pause_type}" if state.pause_type else state.kind.value


def _agent(tenant: str, agent_id: str, m: AgentMemory) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "agent_id": agent_id,
        "name": m.name,
        "team": m.team,
        "state": _state(m.state),
        "state_since": _iso(m.since),
    }


def _rows(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return {"count": len(rows), key: rows[:MAX_ROWS], "truncated": len(rows) > MAX_ROWS}


class Tools:
    def __init__(self, view: MonitorView) -> None:
        self.view = view

    # --- scope ------------------------------------------------------------------------------

    def tenants(self, grant: Grant, tenant: str | None) -> list[str]:
        if tenant is None:
            return [t for t in self.view.tenants if grant.allows_tenant(t)]
        if not grant.allows_tenant(tenant):
            raise Denied(f"this token does not reach tenant {tenant!r}")
        if tenant not in self.view.tenants:
            raise NotFound(f"no tenant {tenant!r}; known: {', '.join(self.tenants(grant, None))}")
        return [tenant]

    @staticmethod
    def team_filter(grant: Grant, team: str | None) -> None:
        if team is not None and not grant.allows_team(team):
            raise Denied(f"this token does not reach team {team!r}")

    @staticmethod
    def _shows(grant: Grant, team: str | None, asked: str | None) -> bool:
        return grant.allows_team(team) and (asked is None or team == asked)

    def _alert_in_reach(self, grant: Grant, alert: Alert) -> None:
        tenant = alert.labels.get("tenant", "")
        if not grant.allows_tenant(tenant) or not grant.allows_team(alert.labels.get("team")):
            raise Denied("this token does not reach that alert's tenant or team")

    # --- read -------------------------------------------------------------------------------

    async def agents_out_of_adherence(
        self, grant: Grant, tenant: str | None = None, team: str | None = None
    ) -> dict[str, Any]:
        self.team_filter(grant, team)
        rows: list[dict[str, Any]] = []
        for t in self.tenants(grant, tenant):
            state = await self.view.tenants[t].engine_state()
            for agent_id, m in sorted(state.agents.items()):
                if m.adherent is False and self._shows(grant, m.team, team):
                    row = _agent(t, agent_id, m)
                    row["scheduled_activity"] = m.segment.activity if m.segment else None
                    row["out_of_adherence_since"] = _iso(m.adherent_since)
                    rows.append(row)
        return {"as_of": _iso(self.view.clock.now()), **_rows(rows, "agents")}

    async def agent_status(self, grant: Grant, tenant: str, agent_id: str) -> dict[str, Any]:
        (tenant,) = self.tenants(grant, tenant)
        m = (await self.view.tenants[tenant].engine_state()).agents.get(agent_id)
        if m is None:
            raise NotFound(f"the monitor has not seen agent {agent_id!r} in tenant {tenant!r}")
        if not grant.allows_team(m.team):
            raise Denied(f"this token does not reach team {m.team!r}")
        now = self.view.clock.now()
        segments = await self.view.schedules.segments_between(
            tenant, now - SCHEDULE_WINDOW, now + SCHEDULE_WINDOW
        )
        alerts = [
            _alert_row(r.alert, [])
            for r in await self.view.alerts.firing()
            if r.alert.labels.get("tenant") == tenant and r.alert.labels.get("agent") == agent_id
        ]
        return {
            **_agent(tenant, agent_id, m),
            "adherent": m.adherent,
            "adherent_since": _iso(m.adherent_since),
            "scheduled_activity": m.segment.activity if m.segment else None,
            "schedule": [
                {"start": _iso(s.start), "end": _iso(s.end), "activity": s.activity}
                for s in sorted(segments.get(agent_id, []), key=lambda s: s.start)
            ],
            "open_exceptions": alerts,
        }

    async def queue_status(
        self, grant: Grant, tenant: str | None = None, queue_id: str | None = None
    ) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        unavailable: list[str] = []
        for t in self.tenants(grant, tenant):
            snapshot = self.view.tenants[t].queues(t)
            if snapshot is None:
                unavailable.append(t)
                continue
            rows += [
                {"tenant": t, "as_of": _iso(snapshot.taken_at), **_queue(q)}
                for q in snapshot.queues
                if queue_id is None or q.queue_id == queue_id
            ]
        if queue_id is not None and not rows and not unavailable:
            raise NotFound(f"no queue {queue_id!r} in the latest queue poll")
        return {**_rows(rows, "queues"), "no_queue_data_for": unavailable}

    async def team_adherence(
        self, grant: Grant, tenant: str | None = None, team: str | None = None
    ) -> dict[str, Any]:
        self.team_filter(grant, team)
        rows: list[dict[str, Any]] = []
        for t in self.tenants(grant, tenant):
            by_team: dict[str, list[Accrual]] = defaultdict(list)
            for acc in (await self.view.tenants[t].engine_state()).totals():
                if self._shows(grant, acc.team, team):
                    by_team[acc.team].append(acc)
            rows += [{"tenant": t, **_team(name, accs)} for name, accs in sorted(by_team.items())]
        return _rows(rows, "teams")

    async def open_alerts(
        self, grant: Grant, tenant: str | None = None, team: str | None = None
    ) -> dict[str, Any]:
        self.team_filter(grant, team)
        tenants = set(self.tenants(grant, tenant))
        rows = []
        for record in await self.view.alerts.firing():
            alert = record.alert
            if alert.labels.get("tenant") in tenants and self._shows(
                grant, alert.labels.get("team"), team
            ):
                rows.append(_alert_row(alert, await self.view.snoozes.mutes(alert)))
        rows.sort(key=lambda r: str(r["since"]))
        return _rows(rows, "alerts")

    async def connection_status(self, grant: Grant, tenant: str | None = None) -> dict[str, Any]:
        out = []
        for t in self.tenants(grant, tenant):
            pollers = self.view.tenants[t].pollers()
            if pollers is None:
                out.append({"tenant": t, "available": False, "reason": _NO_POLLERS})
                continue
            out.append({"tenant": t, "available": True, **_connection(pollers)})
        return {"tenants": out}

    # --- write ------------------------------------------------------------------------------

    async def acknowledge_alert(
        self, grant: Grant, fingerprint: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        alert = await self._open(grant, fingerprint)
        until = until_from(body, self.view.clock.now(), required=False)
        mute = await self.view.snoozes.ack_alert(alert, until=until, by=_by(grant))
        return {"fingerprint": fingerprint, **_mute(mute)}

    async def snooze_alert(
        self, grant: Grant, fingerprint: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        alert = await self._open(grant, fingerprint)
        until = until_from(body, self.view.clock.now())
        assert until is not None  # required=True guarantees it
        mute = await self.view.snoozes.snooze_alert(alert.fingerprint, until, by=_by(grant))
        return {"fingerprint": fingerprint, **_mute(mute)}

    async def unsnooze_alert(self, grant: Grant, fingerprint: str) -> dict[str, Any]:
        record = await self.view.alerts.get(fingerprint)
        if record is None:
            raise NotFound(f"no alert {fingerprint}")
        self._alert_in_reach(grant, record.alert)
        return {
            "fingerprint": fingerprint,
            "removed": await self.view.snoozes.unsnooze_alert(fingerprint),
        }

    async def approve(
        self, grant: Grant, tenant: str, agent_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Approve a time range of one agent (`start`, `end`, `reason`): an open exception it
        covers now resolves at the monitor's next cycle."""
        store, tz = self._approvals(grant, tenant)
        await self._agent_in_reach(grant, tenant, agent_id)
        doc = await store.approve(tenant, request_from(body, agent_id, _by(grant), tz))
        return _approval(doc)

    async def withdraw_approval(
        self, grant: Grant, tenant: str, approval_id: str
    ) -> dict[str, Any]:
        store, _ = self._approvals(grant, tenant)
        active = {a["id"]: a for a in await store.active(tenant)}
        if approval_id not in active:
            raise NotFound(f"no active approval {approval_id!r} in tenant {tenant!r}")
        await self._agent_in_reach(grant, tenant, active[approval_id]["agent"])
        doc = await store.withdraw(tenant, approval_id, _by(grant))
        if doc is None:  # withdrawn by someone else in between
            raise NotFound(f"no active approval {approval_id!r} in tenant {tenant!r}")
        return _approval(doc)

    def _approvals(self, grant: Grant, tenant: str) -> tuple[ApprovalStore, ZoneInfo]:
        (tenant,) = self.tenants(grant, tenant)
        history = self.view.history
        if history is None or tenant not in history.tenants:
            raise NotFound("approvals are not available in this MCP process")
        return ApprovalStore(history), history.tenants[tenant]

    async def _agent_in_reach(self, grant: Grant, tenant: str, agent_id: str) -> None:
        """The agent's team decides a team-restricted token's reach: the monitor must know it."""
        m = (await self.view.tenants[tenant].engine_state()).agents.get(agent_id)
        if m is None:
            raise NotFound(f"the monitor has not seen agent {agent_id!r} in tenant {tenant!r}")
        if not grant.allows_team(m.team):
            raise Denied(f"this token does not reach team {m.team!r}")

    async def _open(self, grant: Grant, fingerprint: str) -> Alert:
        record = await open_alert(self.view.alerts, fingerprint)
        if record is None:
            raise NotFound(f"no open alert {fingerprint}")
        self._alert_in_reach(grant, record.alert)
        return record.alert


_NO_POLLERS = "this MCP process does not poll Puzzel; ask the MCP endpoint of the running monitor"


def _by(grant: Grant) -> str:
    return f"mcp:{grant.name}"


def _approval(doc: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "tenant",
        "agent",
        "start",
        "end",
        "reason",
        "by",
        "at",
        "withdrawn_by",
        "withdrawn_at",
    )
    return {k: doc.get(k) for k in keys}


def _mute(m: Mute) -> dict[str, Any]:
    return {"kind": m.kind, "until": rfc3339(m.until), "by": m.by}


def _alert_row(alert: Alert, mutes: list[Mute]) -> dict[str, Any]:
    labels = alert.labels
    return {
        "fingerprint": alert.fingerprint,
        "rule": labels.get("alertname"),
        "severity": labels.get("severity"),
        "tenant": labels.get("tenant"),
        "team": labels.get("team"),
        "subject": alert.subject,
        "summary": alert.annotations.get("summary"),
        "since": rfc3339(alert.starts_at),
        "muted": [_mute(m) for m in mutes],
    }


def _queue(q: QueueObservation) -> dict[str, Any]:
    return {
        "queue_id": q.queue_id,
        "name": q.description,
        "waiting": q.queue_size,
        "longest_wait_seconds": q.wait_time_max_seconds,
        "agents_logged_on": q.agents_logged_on,
        "agents_ready": q.agents_ready,
        "agents_in_pause": q.agents_in_pause,
        "offered_today": q.calls_offered_today,
        "answered_today": q.calls_answered_today,
        "abandoned_today": q.calls_abandoned_today,
        "sla_percent": q.sla_percent,
        "alarm": q.alarm,
    }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def _team(name: str, accs: list[Accrual]) -> dict[str, Any]:
    scheduled = sum(a.scheduled_seconds for a in accs)
    productive = sum(a.productive_scheduled_seconds for a in accs)
    return {
        "team": name,
        "agents": len(accs),
        "scheduled_hours": round(scheduled / 3600, 2),
        "adherence": _ratio(sum(a.adherent_seconds for a in accs), scheduled),
        "conformance": _ratio(sum(a.productive_seconds for a in accs), productive),
    }


def _connection(pollers: TenantPollers) -> dict[str, Any]:
    return {
        "endpoints_supported": pollers.supported(),
        "polls": {
            kind: {
                "up": h.up,
                "last_success": _iso(h.last_success),
                "polls": h.polls,
                "failures": h.failures,
            }
            for kind, h in sorted(pollers.health.items())
        },
    }
