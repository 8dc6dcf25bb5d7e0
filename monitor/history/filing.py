"""Accrued pieces filed by local day, team and 15-minute slot (pure).

A piece belongs to the local day its shift starts on (a night shift is the day it starts);
unscheduled time far from any shift belongs to its calendar day. Pieces are cut at 15-minute
UTC slot bounds, which are local quarter hours (and so local midnight) in every zone in use,
whose offsets are all whole quarter hours. Time before an agent's watermark is already on file
and is skipped: a restart that re-accounts a stretch cannot count it twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.engine.model import Accrual, AccruedPiece
from monitor.history.keys import SEP

METRICS = ("scheduled", "adherent", "productive", "productive_scheduled")
SLOT_SECONDS = 900

Fields = dict[str, float]


def _fields() -> defaultdict[date, Fields]:
    return defaultdict(lambda: defaultdict(float))


@dataclass
class Filed:
    """What one cycle adds: per local day, the hash fields and their increments."""

    agents: defaultdict[date, Fields] = field(default_factory=_fields)
    teams: defaultdict[date, Fields] = field(default_factory=_fields)
    slots: defaultdict[date, Fields] = field(default_factory=_fields)
    agent_teams: defaultdict[date, dict[str, str]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    watermarks: dict[str, float] = field(default_factory=dict)
    # (day, agent) -> scheduled time out of adherence, as [start, end) epoch seconds, in order:
    # what an approval of a time range can excuse
    outs: defaultdict[tuple[date, str], list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def days(self) -> set[date]:
        return set(self.agents) | set(self.slots)


def _cuts(a: datetime, b: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[a, b) cut at the 15-minute slot bounds."""
    t = a
    while t < b:
        epoch = t.timestamp()
        nxt = datetime.fromtimestamp((epoch // SLOT_SECONDS + 1) * SLOT_SECONDS, UTC)
        end = min(nxt, b)
        yield t, end
        t = end


def slot_start(t: datetime) -> int:
    return int(t.timestamp() // SLOT_SECONDS * SLOT_SECONDS)


def _flags(p: AccruedPiece) -> tuple[bool, bool, bool, bool]:
    return p.scheduled, p.adherent, p.productive, p.productive_scheduled


def file_accruals(
    accruals: Iterable[Accrual], tz: ZoneInfo, watermarks: Mapping[str, float]
) -> Filed:
    out = Filed()
    for acc in accruals:
        mark = watermarks.get(acc.agent_id)
        for piece in acc.pieces:
            start = piece.start
            if mark is not None:
                start = max(start, datetime.fromtimestamp(mark, UTC))
            if start >= piece.end:
                continue
            _file_piece(out, acc, piece, start, tz)
            out.watermarks[acc.agent_id] = max(
                out.watermarks.get(acc.agent_id, 0.0), piece.end.timestamp()
            )
    return out


def _file_piece(
    out: Filed, acc: Accrual, piece: AccruedPiece, start: datetime, tz: ZoneInfo
) -> None:
    anchor_day = piece.shift_start.astimezone(tz).date() if piece.shift_start else None
    flags = _flags(piece)
    if piece.scheduled and not piece.adherent:
        day = anchor_day or start.astimezone(tz).date()
        _add_range(out.outs[(day, acc.agent_id)], start.timestamp(), piece.end.timestamp())
    for a, b in _cuts(start, piece.end):
        seconds = (b - a).total_seconds()
        calendar_day = a.astimezone(tz).date()
        day = anchor_day or calendar_day
        out.agent_teams[day][f"{acc.agent_id}{SEP}team"] = acc.team
        slot = slot_start(a)
        for metric, on in zip(METRICS, flags, strict=True):
            if on:
                out.agents[day][f"{acc.agent_id}{SEP}{metric}"] += seconds
                out.teams[day][f"{acc.team}{SEP}{metric}"] += seconds
                out.slots[calendar_day][f"{acc.team}{SEP}{slot}{SEP}{metric}"] += seconds


def _add_range(ranges: list[tuple[float, float]], a: float, b: float) -> None:
    if ranges and ranges[-1][1] == a:
        ranges[-1] = (ranges[-1][0], b)
    else:
        ranges.append((a, b))


def overlap_seconds(
    ranges: Iterable[tuple[float, float]], windows: Iterable[tuple[float, float]]
) -> float:
    """Seconds of `ranges` (disjoint) inside the union of `windows` (which may overlap)."""
    merged: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    total = 0.0
    for a, b in ranges:
        for wa, wb in merged:
            total += max(0.0, min(b, wb) - max(a, wa))
    return total


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of a local day (23 or 25 hours long on a DST change)."""
    start = datetime.combine(day, datetime.min.time(), tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    return start.astimezone(UTC), end.astimezone(UTC)
