"""Puzzel's three date forms, all turned into timezone-aware UTC datetimes.

1. ISO 8601 with `Z` or an offset: `2024-08-12T07:58:21.841Z`, `2024-08-12T09:58:21+02:00`.
2. Microsoft JSON dates: `/Date(1767016200000)/`, `/Date(1767016200000+0100)/`. The number is
   milliseconds since the Unix epoch in UTC; the offset only records the sender's zone, so it
   does not move the instant.
3. Zone-less local times: `2024-08-12T21:26:50.51`, read in the tenant's time zone (Europe/Oslo
   unless told otherwise). A wall time skipped by a DST change is an error; a repeated one means
   its first occurrence.

`PuzzelDateTime` is the pydantic field type. It reads the zone for form 3 from the validation
context key `"timezone"` (a `ZoneInfo` or a zone name), e.g.
`Model.model_validate(data, context={"timezone": ZoneInfo("Europe/Helsinki")})`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, ValidationInfo

DEFAULT_TIMEZONE = "Europe/Oslo"

_MS_DATE = re.compile(r"\\?/Date\((-?\d+)(?:([+-])(\d{2})(\d{2}))?\)\\?/")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FORMS = (
    "ISO 8601 ('2024-08-12T07:58:21.841Z'), '/Date(1767016200000+0100)/' "
    "or a zone-less local time ('2024-08-12T21:26:50.51')"
)


def resolve_timezone(tz: tzinfo | str | None) -> tzinfo:
    """A tzinfo for `tz` (a zone name, a tzinfo, or None for Europe/Oslo). Raises ValueError."""
    if tz is None:
        return ZoneInfo(DEFAULT_TIMEZONE)
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {tz!r}; expected an IANA name like 'Europe/Oslo'"
        ) from None


def localize(naive: datetime, tz: tzinfo) -> datetime:
    """Attach `tz` to a naive wall time and return UTC.

    Raises ValueError for a wall time that does not exist (skipped by a DST change); an
    ambiguous one (repeated by a DST change) resolves to its first occurrence.
    """
    first = naive.replace(tzinfo=tz, fold=0)
    as_utc = first.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(
            f"local time {naive.isoformat()} does not exist in {tz} (skipped by a DST change)"
        )
    return as_utc


def parse_puzzel_datetime(value: str | datetime, tz: tzinfo | str | None = None) -> datetime:
    """Parse any of Puzzel's date forms into an aware UTC datetime. Raises ValueError."""
    zone = resolve_timezone(tz)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return localize(value, zone)
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected a date string, {_FORMS}; got {type(value).__name__}")
    text = value.strip()
    ms = _MS_DATE.fullmatch(text)
    if ms is not None:
        return _EPOCH + timedelta(milliseconds=int(ms.group(1)))
    iso = _ISO.fullmatch(text)
    if iso is None:
        raise ValueError(f"expected {_FORMS}; got {value!r}")
    year, month, day, hour, minute, second, fraction, offset = iso.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        naive = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
        )
    except ValueError as exc:
        raise ValueError(f"invalid date {value!r}: {exc}") from None
    if offset is None:
        return localize(naive, zone)
    if offset in ("Z", "z"):
        return naive.replace(tzinfo=UTC)
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return (naive - sign * delta).replace(tzinfo=UTC)


def _validate(value: Any, info: ValidationInfo) -> datetime:
    context = info.context if isinstance(info.context, dict) else {}
    return parse_puzzel_datetime(value, context.get("timezone"))


PuzzelDateTime = Annotated[datetime, BeforeValidator(_validate)]
"""A datetime field accepting every Puzzel date form; always yields aware UTC."""
