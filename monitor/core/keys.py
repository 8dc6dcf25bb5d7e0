"""Every Redis key the monitor writes, in one place (names as in README, "Architecture").

All keys start with a prefix (`pzm` unless a command says otherwise: `replay` and `demo` use
their own, so they never touch a running monitor's keys). `{t}` is a tenant (customer key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DEFAULT_PREFIX = "pzm"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str = DEFAULT_PREFIX

    # --- schedules (monitor.schedules.store) -----------------------------------------------
    def schedules(self, tenant: str) -> str:
        """`{p}:{t}:sched`: the base of a tenant's schedule keys."""
        return f"{self.prefix}:{tenant}:sched"

    def schedule_segments(self, tenant: str, agent_id: str, day: date) -> str:
        return f"{self.schedules(tenant)}:seg:{agent_id}:{day.isoformat()}"

    def schedule_agents(self, tenant: str, day: date) -> str:
        return f"{self.schedules(tenant)}:agents:{day.isoformat()}"

    def schedule_timeline(self, tenant: str) -> str:
        return f"{self.schedules(tenant)}:timeline"

    def schedule_maxlen(self, tenant: str) -> str:
        return f"{self.schedules(tenant)}:maxlen"

    def schedule_version(self, tenant: str) -> str:
        return f"{self.schedules(tenant)}:version"

    # --- engine (monitor.pipeline.state_store) ---------------------------------------------
    def engine_fields(self, tenant: str) -> str:
        """A hash: header, progress, and one field per agent, team and queue."""
        return f"{self.prefix}:{tenant}:engine:fields"

    def engine_state(self, tenant: str) -> str:
        """The engine state as one JSON document: read once to migrate, then deleted."""
        return f"{self.prefix}:{tenant}:engine"

    # --- alerts (monitor.alerts) ------------------------------------------------------------
    def outbox(self) -> str:
        return f"{self.prefix}:outbox"

    def alerts(self) -> str:
        return f"{self.prefix}:alerts"

    def sent(self, sink: str, part: str) -> str:
        """Idempotency record of one notification to one sink."""
        return f"{self.prefix}:sent:{sink}:{part}"

    def fired(self, sink: str, fingerprint: str, starts_at: str) -> str:
        """That a firing of this alert episode went to this sink (its resolve may follow)."""
        return f"{self.prefix}:fired:{sink}:{fingerprint}:{starts_at}"

    def alert_mute(self, kind: str, fingerprint: str) -> str:
        """A snooze or an acknowledgement of one alert."""
        return f"{self.prefix}:{kind}:alert:{fingerprint}"

    def agent_snooze(self, tenant: str, agent: str) -> str:
        return f"{self.prefix}:snooze:agent:{tenant}:{agent}"

    def slack_users(self, tenant: str) -> str:
        """Puzzel user id -> Slack user id or e-mail, for direct messages to agents."""
        return f"{self.prefix}:{tenant}:slack-users"

    def slack_email(self, email: str) -> str:
        """The Slack user id `users.lookupByEmail` gave for `email` ("" for none), with a TTL."""
        return f"{self.prefix}:slack-email:{email.lower()}"

    # --- the adherence history (monitor.history) -------------------------------------------
    # Per tenant and local day, hashes of float fields: agents (agent, metric), teams (team,
    # metric), slots (team, 15-minute slot, metric); exceptions (one JSON document each); outs
    # (agent, start -> end: scheduled time out of adherence).
    def history(self, tenant: str) -> str:
        return f"{self.prefix}:hist:{tenant}"

    def history_agents(self, tenant: str, day: date) -> str:
        return f"{self.history(tenant)}:agents:{day.isoformat()}"

    def history_teams(self, tenant: str, day: date) -> str:
        return f"{self.history(tenant)}:teams:{day.isoformat()}"

    def history_slots(self, tenant: str, day: date) -> str:
        return f"{self.history(tenant)}:slots:{day.isoformat()}"

    def history_exceptions(self, tenant: str, day: date) -> str:
        return f"{self.history(tenant)}:exceptions:{day.isoformat()}"

    def history_outs(self, tenant: str, day: date) -> str:
        return f"{self.history(tenant)}:outs:{day.isoformat()}"

    def history_watermark(self, tenant: str) -> str:
        """Agent -> up to when (epoch seconds) its time is on file."""
        return f"{self.history(tenant)}:watermark"

    def history_timezone(self, tenant: str) -> str:
        """The tenant's time zone, so a report needs no configuration to read its days."""
        return f"{self.history(tenant)}:timezone"

    def approvals(self, tenant: str) -> str:
        """Approval id -> JSON (a withdrawn one stays, marked)."""
        return f"{self.history(tenant)}:approvals"

    def approvals_version(self, tenant: str) -> str:
        """A counter moved by every approval and withdrawal (the pipelines reload on a move)."""
        return f"{self.history(tenant)}:approvals-version"

    def approvals_audit(self, tenant: str) -> str:
        """A list of JSON entries: every approval and withdrawal, who and when."""
        return f"{self.history(tenant)}:audit"

    def queue_intervals(self, tenant: str, day: date) -> str:
        """Field `queue<SEP>start` -> the closed interval's JSON."""
        return f"{self.history(tenant)}:queue-intervals:{day.isoformat()}"

    def queue_interval_state(self, tenant: str) -> str:
        """The open intervals and last counters (`QueueIntervals.to_dict`), JSON."""
        return f"{self.history(tenant)}:queue-state"

    def queue_interval_stream(self, tenant: str) -> str:
        """Every closed interval, in order, for a forecasting tool's consumer group."""
        return f"{self.history(tenant)}:queue-intervals"

    # --- replicas sharing tenants (monitor.pipeline.leases) ----------------------------------
    def lease(self, tenant: str) -> str:
        """Who works a tenant: `{replica}:{token}`, with a TTL (absent: nobody)."""
        return f"{self.prefix}:{tenant}:lease"

    def fencing_token(self, tenant: str) -> str:
        """A counter raised by every acquisition of the tenant's lease; a write is fenced by it."""
        return f"{self.prefix}:{tenant}:lease:token"

    def delivery_lease(self) -> str:
        """Who delivers the outbox (one replica at a time)."""
        return f"{self.prefix}:outbox:lease"

    def delivery_token(self) -> str:
        return f"{self.prefix}:outbox:lease:token"

    def replicas(self) -> str:
        """Sorted set: replica id -> its last heartbeat (epoch milliseconds)."""
        return f"{self.prefix}:replicas"

    # --- the process (monitor.app) ----------------------------------------------------------
    def heartbeat(self) -> str:
        return f"{self.prefix}:heartbeat"

    def epoch(self) -> str:
        """Set at start; its disappearance means Redis lost its data."""
        return f"{self.prefix}:epoch"
