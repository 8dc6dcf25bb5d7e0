"""An agent's schedule indexed for the engine: the segment at an instant, boundaries, shifts,
break overruns (`ScheduleIndex`)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from monitor.engine.conditions import utc as _utc
from monitor.engine.model import (
    Segment,
)

OFF_ACTIVITY = "off"  # never part of a shift (scenario-format.md)
# Unscheduled time this close to a shift belongs to that shift's day in the history (an early
# login before a midnight shift is that night's, not the previous day's).
SHIFT_HALO = timedelta(hours=6)
_EPSILON = timedelta(microseconds=1)


# --- schedules -------------------------------------------------------------------------------


class ScheduleIndex:
    """One agent's segments, indexed for lookups by time."""

    __slots__ = ("_blocks", "_bounds", "_ends", "_max_end", "_shifts", "_starts", "segments")

    def __init__(self, segments: Iterable[Segment]) -> None:
        # all times in UTC with the one `UTC` tzinfo: comparisons then skip utcoffset() calls
        segs = sorted(
            (
                s
                if s.start.tzinfo is UTC and s.end.tzinfo is UTC
                else Segment(_utc(s.start), _utc(s.end), s.agent_id, s.activity)
                for s in segments
            ),
            key=lambda s: (s.start, s.end),
        )
        self.segments = segs
        self._starts = [s.start for s in segs]
        self._ends = sorted(s.end for s in segs)
        self._max_end: list[datetime] = []
        for s in segs:
            prev = self._max_end[-1] if self._max_end else s.end
            self._max_end.append(max(prev, s.end))
        self._bounds = sorted({s.start for s in segs} | {s.end for s in segs})
        self._shifts: list[tuple[datetime, datetime]] | None = None
        self._blocks: dict[frozenset[str], list[tuple[datetime, datetime]]] = {}

    def at(self, t: datetime) -> Segment | None:
        """The segment in force at `t` (the latest-starting one if segments overlap)."""
        i = bisect.bisect_right(self._starts, t) - 1
        while i >= 0:
            if self._max_end[i] <= t:
                return None
            s = self.segments[i]
            if s.end > t:
                return s
            i -= 1
        return None

    def bounds_in(self, a: datetime, b: datetime) -> list[datetime]:
        """Segment boundaries in (a, b]."""
        lo = bisect.bisect_right(self._bounds, a)
        hi = bisect.bisect_right(self._bounds, b)
        return self._bounds[lo:hi]

    def next_bound(self, t: datetime) -> datetime | None:
        """The first segment boundary after `t`, or None."""
        i = bisect.bisect_right(self._bounds, t)
        return self._bounds[i] if i < len(self._bounds) else None

    def run_start(self, t: datetime, pred: Callable[[Segment], bool]) -> datetime:
        """Start of the run of contiguous segments satisfying `pred` that contains `t`."""
        seg = self.at(t)
        if seg is None:
            return t
        start = seg.start
        for _ in range(len(self.segments)):
            prev = self.at(start - _EPSILON)
            if prev is None or not pred(prev):
                break
            start = prev.start
        return start

    def gap_start(self, t: datetime) -> datetime | None:
        """When the unscheduled gap containing `t` began (the latest segment end <= t)."""
        i = bisect.bisect_right(self._ends, t)
        return self._ends[i - 1] if i else None

    def shift_at(self, t: datetime) -> tuple[datetime, datetime] | None:
        """The shift (run of contiguous non-`off` segments) containing `t`."""
        if self._shifts is None:
            self._shifts = _merge(s for s in self.segments if s.activity != OFF_ACTIVITY)
        for start, end in self._shifts:
            if start <= t < end:
                return start, end
            if start > t:
                break
        return None

    def shift_anchor(self, a: datetime, b: datetime) -> datetime | None:
        """The start of the shift that time from `a` to `b` belongs to: the one in force, else
        the nearest within `SHIFT_HALO` (logged on early or late is part of that shift's day);
        None when none is that near."""
        shift = self.shift_at(a)
        if shift is not None:
            return shift[0]
        best: tuple[timedelta, datetime] | None = None
        for start, end in self._shifts or ():
            gap = start - b if start >= b else a - end if end <= a else timedelta(0)
            if gap <= SHIFT_HALO and (best is None or gap < best[0]):
                best = (gap, start)
        return best[1] if best is not None else None

    def overrun_at(
        self, pause_start: datetime, break_activities: frozenset[str]
    ) -> datetime | None:
        """When a continuous pause from `pause_start` outlasts the break block it overlaps.

        Contiguous break-like segments (a break followed by lunch) form one block; the pause is
        measured against the first block that ends after the pause began.
        """
        blocks = self._blocks.get(break_activities)
        if blocks is None:
            blocks = _merge(s for s in self.segments if s.activity in break_activities)
            self._blocks[break_activities] = blocks
        for start, end in blocks:
            if end > pause_start:
                return max(pause_start + (end - start), start)
        return None


def _merge(segments: Iterable[Segment]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s in segments:  # already sorted by start
        if out and s.start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], s.end))
        else:
            out.append((s.start, s.end))
    return out


# agent id -> segments, or the same indexed once (`index_schedules`) by a caller that repeats them
Schedules = Mapping[str, Sequence[Segment] | ScheduleIndex]


def _schedule_for(segments: Sequence[Segment] | ScheduleIndex | None) -> ScheduleIndex:
    # The engine keeps no cache: a caller that evaluates the same schedules every cycle passes
    # them indexed once (`index_schedules`), as the pipeline does.
    if isinstance(segments, ScheduleIndex):
        return segments
    if not segments:
        return _EMPTY_SCHEDULE
    return ScheduleIndex(segments)


def index_schedules(schedules: Mapping[str, Sequence[Segment]]) -> dict[str, ScheduleIndex]:
    """Each agent's segments indexed for the engine (build once per schedule version)."""
    return {agent: ScheduleIndex(segs) for agent, segs in schedules.items() if segs}


_EMPTY_SCHEDULE = ScheduleIndex(())
