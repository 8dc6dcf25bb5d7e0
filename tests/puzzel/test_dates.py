"""Puzzel's three date forms, DST edges in Europe/Oslo, and the pydantic field type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from monitor.puzzel.dates import PuzzelDateTime, localize, parse_puzzel_datetime

OSLO = ZoneInfo("Europe/Oslo")


def utc(*parts: int) -> datetime:
    """datetime(*parts) in UTC."""
    return datetime(*parts, tzinfo=UTC)


class Stamped(BaseModel):
    at: PuzzelDateTime


def test_iso_with_z_and_milliseconds() -> None:
    """An ISO time with Z is UTC, milliseconds kept."""
    assert parse_puzzel_datetime("2024-08-12T07:58:21.841Z") == utc(2024, 8, 12, 7, 58, 21, 841000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-08-12T09:58:21+02:00", utc(2024, 8, 12, 7, 58, 21)),
        ("2024-08-12T09:58:21+0200", utc(2024, 8, 12, 7, 58, 21)),
        ("2024-08-12T02:58:21-05:00", utc(2024, 8, 12, 7, 58, 21)),
        ("2024-08-12T07:58:21.1234567Z", utc(2024, 8, 12, 7, 58, 21, 123456)),
    ],
)
def test_iso_with_offsets(text: str, expected: datetime) -> None:
    """ISO offsets move the instant to UTC; 7-digit .NET fractions are truncated to microseconds."""
    assert parse_puzzel_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/Date(1767016200000)/",
        "/Date(1767016200000-0000)/",
        "/Date(1767016200000+0100)/",
        "/Date(1767016200000-0530)/",
        "\\/Date(1767016200000+0200)\\/",
    ],
)
def test_ms_json_date_offset_does_not_move_the_instant(text: str) -> None:
    """/Date(ms±hhmm)/ is epoch milliseconds UTC whatever the offset says."""
    assert parse_puzzel_datetime(text) == utc(2025, 12, 29, 13, 50)


def test_ms_json_date_before_epoch() -> None:
    """Negative milliseconds are before 1970."""
    assert parse_puzzel_datetime("/Date(-86400000)/") == utc(1969, 12, 31)


def test_ms_json_date_across_oslo_spring_forward() -> None:
    """/Date()/ values on either side of 2026-03-29 01:00 UTC are exactly one second apart."""
    before = parse_puzzel_datetime("/Date(1774745999000+0100)/")
    after = parse_puzzel_datetime("/Date(1774746000000+0200)/")
    assert after - before == timedelta(seconds=1)
    assert before.astimezone(OSLO).hour == 1
    assert after.astimezone(OSLO).hour == 3


def test_ms_json_date_across_oslo_fall_back() -> None:
    """/Date()/ values during the repeated hour of 2026-10-25 keep their distinct instants."""
    first = parse_puzzel_datetime("/Date(1792888200000+0200)/")  # 02:30 CEST
    second = parse_puzzel_datetime("/Date(1792891800000+0100)/")  # 02:30 CET
    assert second - first == timedelta(hours=1)
    assert first.astimezone(OSLO).replace(tzinfo=None) == datetime(2026, 10, 25, 2, 30)
    assert second.astimezone(OSLO).replace(tzinfo=None) == datetime(2026, 10, 25, 2, 30)


def test_zoneless_is_oslo_local_by_default() -> None:
    """A zone-less time is Oslo wall time: CEST (+2) in August."""
    assert parse_puzzel_datetime("2024-08-12T21:26:50.51") == utc(2024, 8, 12, 19, 26, 50, 510000)


def test_zoneless_uses_given_zone() -> None:
    """A tenant zone other than Oslo is honoured for zone-less times."""
    got = parse_puzzel_datetime("2024-01-12T12:00:00", "Europe/Helsinki")
    assert got == utc(2024, 1, 12, 10, 0)


def test_zoneless_nonexistent_spring_forward_time_is_an_error() -> None:
    """02:30 on 2026-03-29 does not exist in Oslo: the error says so."""
    with pytest.raises(ValueError, match="does not exist"):
        parse_puzzel_datetime("2026-03-29T02:30:00")


def test_zoneless_around_spring_forward() -> None:
    """01:59:59 is CET and 03:00:00 is CEST on 2026-03-29: one second apart."""
    a = parse_puzzel_datetime("2026-03-29T01:59:59")
    b = parse_puzzel_datetime("2026-03-29T03:00:00")
    assert a == utc(2026, 3, 29, 0, 59, 59)
    assert b - a == timedelta(seconds=1)


def test_zoneless_ambiguous_fall_back_time_is_first_occurrence() -> None:
    """02:30 on 2026-10-25 happens twice in Oslo: the first (CEST, 00:30 UTC) is meant."""
    assert parse_puzzel_datetime("2026-10-25T02:30:00") == utc(2026, 10, 25, 0, 30)


def test_zoneless_after_fall_back() -> None:
    """03:00 on 2026-10-25 is CET again (02:00 UTC)."""
    assert parse_puzzel_datetime("2026-10-25T03:00:00") == utc(2026, 10, 25, 2, 0)


@pytest.mark.parametrize(
    "text", ["yesterday", "2024-13-01T00:00:00", "/Date(abc)/", "12:00", "", "2024-02-30"]
)
def test_garbage_is_rejected_naming_the_forms(text: str) -> None:
    """Unparseable text raises ValueError quoting the value."""
    with pytest.raises(ValueError, match=r"expected|invalid date"):
        parse_puzzel_datetime(text)


def test_aware_datetime_input_is_converted_to_utc() -> None:
    """An aware datetime passes through, converted to UTC."""
    cest = timezone(timedelta(hours=2))
    assert parse_puzzel_datetime(datetime(2024, 8, 12, 9, 0, tzinfo=cest)) == utc(2024, 8, 12, 7)


def test_unknown_zone_is_an_error() -> None:
    """A misspelt zone name gives a clear error."""
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Olso'"):
        parse_puzzel_datetime("2024-08-12T21:26:50", "Europe/Olso")


def test_field_type_yields_aware_utc_for_all_forms() -> None:
    """PuzzelDateTime turns all three forms into the same aware UTC instant."""
    forms = ["2024-08-12T19:26:50Z", "/Date(1723490810000+0200)/", "2024-08-12T21:26:50"]
    values = [Stamped.model_validate({"at": f}).at for f in forms]
    assert all(v.tzinfo is UTC for v in values)
    assert set(values) == {utc(2024, 8, 12, 19, 26, 50)}


def test_field_type_reads_zone_from_validation_context() -> None:
    """The validation context's "timezone" applies to zone-less values."""
    got = Stamped.model_validate(
        {"at": "2024-08-12T21:26:50"}, context={"timezone": ZoneInfo("America/New_York")}
    )
    assert got.at == utc(2024, 8, 13, 1, 26, 50)


def test_field_type_error_names_the_field() -> None:
    """A bad date fails validation on that field."""
    with pytest.raises(ValidationError) as err:
        Stamped.model_validate({"at": "2026-03-29T02:15:00"})
    assert err.value.errors()[0]["loc"] == ("at",)
    assert "does not exist" in str(err.value)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)))
def test_localize_round_trips_every_existing_wall_time(naive: datetime) -> None:
    """Any Oslo wall time that exists maps to a UTC instant showing that same wall time."""
    try:
        got = localize(naive, OSLO)
    except ValueError:
        # Only DST gaps may fail: then the wall time really is missing from the zone.
        probe = naive.replace(tzinfo=OSLO).astimezone(UTC).astimezone(OSLO)
        assert probe.replace(tzinfo=None) != naive
        return
    assert got.astimezone(OSLO).replace(tzinfo=None) == naive
    assert got.tzinfo is UTC


@given(
    st.integers(min_value=-(10**12), max_value=4 * 10**12),
    st.sampled_from(["", "+0100", "-0000", "+0230"]),
)
def test_ms_dates_round_trip(ms: int, offset: str) -> None:
    """/Date(ms)/ parses back to the same epoch milliseconds for any offset suffix."""
    got = parse_puzzel_datetime(f"/Date({ms}{offset})/")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert (got - epoch) // timedelta(milliseconds=1) == ms
