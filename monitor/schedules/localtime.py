"""Turning local wall-clock times into UTC instants, strictly: a time that does not exist (the
hour skipped when clocks go forward) is an error; an ambiguous one (the hour repeated when clocks
go back) resolves to its first occurrence unless an explicit UTC offset says otherwise."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

_DATETIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
)
_TIME = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class LocalTimeError(ValueError):
    """A time that cannot be placed on the timeline (message says why)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A UTC instant, and whether its local wall time was ambiguous (so a first-occurrence choice
    was made)."""

    utc: datetime
    ambiguous: bool = False


def resolve_local(naive: datetime, tz: tzinfo) -> Resolved:
    """The UTC instant of a naive local wall time in `tz`.

    Raises LocalTimeError for a time skipped by a DST change.
    """
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if back != naive:
        raise LocalTimeError(
            f"{naive:%Y-%m-%d %H:%M:%S} does not exist in {tz} (skipped when the clocks go forward)"
        )
    ambiguous = first.utcoffset() != second.utcoffset()
    return Resolved(first.astimezone(UTC), ambiguous)


def check_aware(moment: datetime) -> Resolved:
    """An aware time whose zone is a named zone still has to exist there (e.g. an iCalendar TZID
    time in the skipped hour); a fixed offset always exists."""
    tz = moment.tzinfo
    assert tz is not None
    naive = moment.replace(tzinfo=None)
    back = moment.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if back != naive:
        raise LocalTimeError(
            f"{naive:%Y-%m-%d %H:%M:%S} does not exist in {tz} (skipped when the clocks go forward)"
        )
    other = moment.replace(fold=1 - moment.fold)
    return Resolved(moment.astimezone(UTC), other.utcoffset() != moment.utcoffset())


def parse_date(text: str) -> date:
    """A `YYYY-MM-DD` date."""
    text = text.strip()
    if not _DATE.match(text):
        raise LocalTimeError(f"expected a date YYYY-MM-DD, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise LocalTimeError(f"invalid date {text!r}: {e}") from None


def parse_clock(text: str, *, allow_24: bool = False) -> tuple[time, int]:
    """A `HH:MM[:SS]` wall-clock time; returns (time, extra days) so `24:00` (if allowed) is
    midnight of the next day."""
    text = text.strip()
    m = _TIME.match(text)
    if not m:
        raise LocalTimeError(f"expected a time HH:MM[:SS], got {text!r}")
    h, mi, s = int(m["h"]), int(m["m"]), int(m["s"] or 0)
    if allow_24 and (h, mi, s) == (24, 0, 0):
        return time(0, 0), 1
    if h > 23 or mi > 59 or s > 59:
        raise LocalTimeError(f"invalid time {text!r}")
    return time(h, mi, s), 0


def parse_datetime(text: str, tz: tzinfo) -> Resolved:
    """`YYYY-MM-DD HH:MM[:SS]` local to `tz`, or ISO 8601 with a `Z`/`±HH:MM` offset (exact)."""
    text = text.strip()
    m = _DATETIME.match(text)
    if not m:
        raise LocalTimeError(
            f"expected a date-time 'YYYY-MM-DD HH:MM[:SS]' (local) or ISO 8601 with an offset, "
            f"got {text!r}"
        )
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if m["offset"] else text)
    except ValueError as e:
        raise LocalTimeError(f"invalid date-time {text!r}: {e}") from None
    if moment.microsecond:
        raise LocalTimeError(f"fractions of a second are not supported: {text!r}")
    if moment.tzinfo is not None:
        return Resolved(moment.astimezone(UTC))
    return resolve_local(moment, tz)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which local `day` begins (a zone whose DST change is at midnight starts
    the day at the first wall time that exists)."""
    naive = datetime.combine(day, time(0))
    for minutes in range(0, 181, 30):
        try:
            return resolve_local(naive + timedelta(minutes=minutes), tz).utc
        except LocalTimeError:
            continue
    raise LocalTimeError(f"cannot find the start of {day} in {tz}")


def local_date(moment: datetime, tz: tzinfo) -> date:
    """The local date of a UTC instant."""
    return moment.astimezone(tz).date()
