"""Every Redis key of the adherence history, in one place.

Per tenant and local day, hashes of float fields (`HINCRBYFLOAT`): `agents` (agent, metric),
`teams` (team, metric) and `slots` (team, 15-minute slot, metric); `exceptions` holds one JSON
document per exception, `outs` the agents' time out of adherence. Approvals and their audit
trail are per tenant. `watermark` is per tenant: up to when each agent's time is on file.
"""

from __future__ import annotations

from datetime import date

SEP = "\x1f"  # between the parts of a field name: agent ids and team names may hold anything


class HistoryKeys:
    def __init__(self, prefix: str = "pzm") -> None:
        self.prefix = f"{prefix}:hist"

    def agents(self, tenant: str, day: date) -> str:
        return f"{self.prefix}:{tenant}:agents:{day.isoformat()}"

    def teams(self, tenant: str, day: date) -> str:
        return f"{self.prefix}:{tenant}:teams:{day.isoformat()}"

    def slots(self, tenant: str, day: date) -> str:
        return f"{self.prefix}:{tenant}:slots:{day.isoformat()}"

    def exceptions(self, tenant: str, day: date) -> str:
        return f"{self.prefix}:{tenant}:exceptions:{day.isoformat()}"

    def outs(self, tenant: str, day: date) -> str:
        """Field `agent<SEP>start` -> end (epoch seconds): scheduled time out of adherence."""
        return f"{self.prefix}:{tenant}:outs:{day.isoformat()}"

    def approvals(self, tenant: str) -> str:
        """Field approval id -> JSON (a withdrawn one stays, marked)."""
        return f"{self.prefix}:{tenant}:approvals"

    def audit(self, tenant: str) -> str:
        """A list of JSON entries: every approval and withdrawal, who and when."""
        return f"{self.prefix}:{tenant}:audit"

    def queue_intervals(self, tenant: str, day: date) -> str:
        """Field `queue<SEP>start` -> the closed interval's JSON."""
        return f"{self.prefix}:{tenant}:queue-intervals:{day.isoformat()}"

    def queue_state(self, tenant: str) -> str:
        """The open intervals and last counters (`QueueIntervals.to_dict`), JSON."""
        return f"{self.prefix}:{tenant}:queue-state"

    def queue_stream(self, tenant: str) -> str:
        """Every closed interval, in order, for a forecasting tool's consumer group."""
        return f"{self.prefix}:{tenant}:queue-intervals"

    def timezone(self, tenant: str) -> str:
        """The tenant's time zone, so a report needs no configuration to read its days."""
        return f"{self.prefix}:{tenant}:timezone"

    def watermark(self, tenant: str) -> str:
        return f"{self.prefix}:{tenant}:watermark"
