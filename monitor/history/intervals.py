"""Interval statistics per visual queue (pure): offered, answered, abandoned and answered
within the service-level target from Puzzel's today counters, as deltas between polls; waits
and agents from its gauges, sampled at each poll.

A today counter that goes down was reset (local midnight): its new value is the delta. The
state (the last counters and the open interval's sums) is plain data, saved with every
closed interval, so a restart mid-interval carries on from it instead of losing or doubling
the deltas. A snapshot no newer than the last one seen of its queue (a restarted replay going
over polls already counted, a late answer) is dropped and counted in `dropped`, never taken for
a reset. Service level is answered within target ÷ (answered + abandoned) (variant (a) of
../shared/wfm-domain.md: Puzzel's counters do not tell abandons before the target apart).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.core.snapshots import QueueObservation

COUNTERS = ("offered", "answered", "abandoned", "answered_within_sla")
WIDTHS = (15, 30, 60)


def _counters(q: QueueObservation) -> dict[str, int]:
    raw = (q.calls_offered_today, q.calls_answered_today, q.calls_abandoned_today,
           q.calls_answered_within_sla)  # fmt: skip
    return {k: int(v or 0) for k, v in zip(COUNTERS, raw, strict=True)}


@dataclass
class OpenInterval:
    start: float  # epoch seconds
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    samples: int = 0
    wait_avg_sum: float = 0.0
    wait_max: float = 0.0
    logged_on_sum: float = 0.0
    ready_sum: float = 0.0

    def sample(self, q: QueueObservation) -> None:
        self.samples += 1
        self.wait_avg_sum += q.wait_time_average_seconds or 0.0
        self.wait_max = max(self.wait_max, q.wait_time_max_seconds or 0.0)
        self.logged_on_sum += q.agents_logged_on or 0
        self.ready_sum += q.agents_ready or 0

    def closed(self, queue: str, width: int) -> dict[str, Any]:
        c, n = self.counts, self.samples or 1
        handled = c["answered"] + c["abandoned"]
        return {
            "queue": queue,
            "start": datetime.fromtimestamp(self.start, UTC).isoformat(),
            "end": datetime.fromtimestamp(self.start + width, UTC).isoformat(),
            **c,
            "service_level": c["answered_within_sla"] / handled if handled else None,
            "average_wait_seconds": self.wait_avg_sum / n if self.samples else None,
            "longest_wait_seconds": self.wait_max if self.samples else None,
            "agents_logged_on": self.logged_on_sum / n if self.samples else None,
            "agents_ready": self.ready_sum / n if self.samples else None,
            "samples": self.samples,
        }


@dataclass
class QueueIntervals:
    """One tenant's queues: feed snapshots with `observe`, which returns the intervals closed."""

    width_minutes: int = 15
    last: dict[str, dict[str, int]] = field(default_factory=dict)
    open: dict[str, OpenInterval] = field(default_factory=dict)
    seen_at: dict[str, float] = field(default_factory=dict)  # queue -> its last poll (epoch s)
    dropped: int = 0  # observations no newer than their queue's last one, ignored

    def observe(self, at: datetime, queues: Iterable[QueueObservation]) -> list[dict[str, Any]]:
        width = self.width_minutes * 60
        # local interval bounds are UTC ones for every zone whose offset is whole quarter hours
        # (all in use); 60-minute ones would differ in a half-hour zone, which is not handled
        start = at.timestamp() // width * width
        closed: list[dict[str, Any]] = []
        for q in queues:
            if at.timestamp() <= self.seen_at.get(q.queue_id, float("-inf")):
                self.dropped += 1
                continue
            self.seen_at[q.queue_id] = at.timestamp()
            current = self.open.get(q.queue_id)
            if current is not None and current.start < start:
                closed.append(current.closed(q.queue_id, width))
                current = None
            if current is None:
                current = self.open[q.queue_id] = OpenInterval(start)
            counters = _counters(q)
            before = self.last.get(q.queue_id)
            if before is not None:
                for k, v in counters.items():
                    # a counter that went down was reset at midnight: it counts from zero
                    current.counts[k] += v - before[k] if v >= before[k] else v
            self.last[q.queue_id] = counters
            current.sample(q)
        return closed

    def to_dict(self) -> dict[str, Any]:
        return {
            "width_minutes": self.width_minutes,
            "last": self.last,
            "open": {k: asdict(v) for k, v in self.open.items()},
            "seen_at": self.seen_at,
            "dropped": self.dropped,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueueIntervals:
        return cls(
            width_minutes=int(d["width_minutes"]),
            last={k: dict(v) for k, v in d["last"].items()},
            open={k: OpenInterval(**v) for k, v in d["open"].items()},
            # a state saved before these were kept: nothing seen, nothing dropped
            seen_at={k: float(v) for k, v in d.get("seen_at", {}).items()},
            dropped=int(d.get("dropped", 0)),
        )
