"""A validated schedule ready to store (`ImportPlan`), and the rule every stored segment keeps
(`check_span`): what the importers produce and the store accepts, apart from both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from monitor.engine.model import Segment
from monitor.schedules.errors import ImportIssue
from monitor.schedules.localtime import local_date, local_midnight


def day_end(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which local `day` ends."""
    return local_midnight(day + timedelta(days=1), tz)


def check_span(segment: Segment, tz: tzinfo) -> str | None:
    """Why `segment` cannot be filed by start date (None if it can): it may run past one local
    midnight, not two, because readers of a date look back only one day."""
    if segment.end <= segment.start:
        return "end is not after start"
    if segment.end > day_end(local_date(segment.start, tz) + timedelta(days=1), tz):
        return "a segment may run past midnight into the next day but no further; split it"
    return None


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """A validated schedule, ready for `ScheduleStore.apply`: the segments become the whole
    schedule of every agent in `agents` on every local date in `dates`."""

    source: str
    tz: tzinfo
    segments: tuple[Segment, ...]
    agents: frozenset[str]
    dates: frozenset[date]
    warnings: tuple[ImportIssue, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "segments": len(self.segments),
            "agents": sorted(self.agents),
            "dates": [d.isoformat() for d in sorted(self.dates)],
            "warnings": [w.as_dict() for w in self.warnings],
        }
