"""The importers turn CSV, JSON and iCalendar into validated plans, or say exactly what is wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from monitor.schedules.errors import ScheduleImportError
from monitor.schedules.importers import (
    parse_csv,
    parse_ics,
    parse_json,
    read_schedule_file,
)
from monitor.schedules.plan import ImportPlan
from tests.schedules.conftest import DATA, OSLO

H = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def read(name: str, **kw: object) -> ImportPlan:
    return read_schedule_file(DATA / name, tz=OSLO, **kw)  # type: ignore[arg-type]


def test_csv_local_and_offset_times_become_utc() -> None:
    """Local CSV times are read in the tenant's zone and ISO times with an offset as written."""
    plan = read("week.csv")
    assert plan.agents == {"1001", "1002"}
    assert plan.dates == {date(2026, 3, 2)}
    first = plan.segments[0]
    assert (first.agent_id, first.start, first.end, first.activity) == (
        "1001",
        utc(2026, 3, 2, 7),
        utc(2026, 3, 2, 10),
        "phone",
    )
    ada = [s for s in plan.segments if s.agent_id == "1002"]
    assert [(s.start, s.end) for s in ada] == [(utc(2026, 3, 2, 7), utc(2026, 3, 2, 15))]


def test_csv_date_columns_roll_an_earlier_end_past_midnight() -> None:
    """With date,start,end columns an end before the start is on the next day (`;` CSV too)."""
    plan = read("night.csv")
    night = plan.segments[0]
    assert night.start == utc(2026, 3, 2, 21)
    assert night.end == utc(2026, 3, 3, 1)
    assert plan.dates == {date(2026, 3, 2), date(2026, 3, 3)}
    assert sum((s.end - s.start for s in plan.segments), timedelta()) == 8 * H


def test_json_dst_days_give_wall_clock_durations() -> None:
    """08:00–17:00 is 9 h on both DST days; 00:00–06:00 is 5 h in spring and 7 h in autumn."""
    plan = read("dst.json")

    def hours(agent: str, day: date) -> float:
        segs = [
            s
            for s in plan.segments
            if s.agent_id == agent and s.start.astimezone(OSLO).date() == day
        ]
        return sum((s.end - s.start for s in segs), timedelta()) / H

    assert hours("2001", date(2026, 3, 29)) == 9
    assert hours("2001", date(2026, 10, 25)) == 9
    assert hours("2002", date(2026, 3, 29)) == 5
    assert hours("2002", date(2026, 10, 25)) == 7


def test_ics_agents_activities_and_times() -> None:
    """iCalendar: agent prefix, ATTENDEEs, X-PUZZEL-AGENT; CATEGORIES activity; all-day days."""
    plan = read("team.ics")
    got = {(s.agent_id, s.start, s.end, s.activity) for s in plan.segments}
    assert got == {
        ("1001", utc(2026, 3, 2, 7), utc(2026, 3, 2, 11), "phone"),
        ("1002", utc(2026, 3, 2, 11), utc(2026, 3, 2, 12), "meeting"),
        ("1003", utc(2026, 3, 2, 11), utc(2026, 3, 2, 12), "meeting"),
        ("1001", utc(2026, 3, 2, 12), utc(2026, 3, 2, 15), "phone"),  # floating 13:00 Oslo
        ("1004", utc(2026, 3, 1, 23), utc(2026, 3, 2, 23), "off"),
    }


def test_ambiguous_time_takes_first_occurrence_and_warns() -> None:
    """02:30 on the fall-back day is the first (CEST) 02:30 unless an offset picks the second."""
    plan = parse_csv(
        "agent,start,end,activity\n"
        "1,2026-10-25 02:30,2026-10-25 04:00,phone\n"
        "2,2026-10-25T02:30:00+01:00,2026-10-25 04:00,phone\n",
        source="fall.csv",
        tz=OSLO,
    )
    one, two = sorted(plan.segments, key=lambda s: s.agent_id)
    assert one.start == utc(2026, 10, 25, 0, 30)
    assert two.start == utc(2026, 10, 25, 1, 30)
    assert one.end - one.start == 2.5 * H
    assert any(w.where == "line 2" and "ambiguous" in w.message for w in plan.warnings)


@pytest.mark.parametrize(
    ("name", "where", "message"),
    [
        ("bad_activity.csv", "line 3", "unknown activity 'coffee'"),
        ("bad_overlap.csv", "line 3", "overlaps"),
        ("bad_dst.csv", "line 2", "2026-03-29 02:30:00 does not exist in Europe/Oslo"),
        ("bad_row.csv", "line 3", "expected 4 fields"),
        (
            "bad_field.json",
            "[1].segments[0][1]",
            "end: expected a time HH:MM or a date-time, got 1300",
        ),
        ("bad_event.ics", "event skipped-hour (line 10)", "does not exist"),
    ],
)
def test_bad_files_name_file_and_place(name: str, where: str, message: str) -> None:
    """Each kind of bad input is rejected with the file, the line or field, and the problem."""
    with pytest.raises(ScheduleImportError) as info:
        read(name)
    issues = info.value.issues
    assert any(
        i.source == str(DATA / name) and i.where == where and message in i.message for i in issues
    ), issues
    assert f"{DATA / name}: {where}: " in str(info.value)


def test_unknown_agent_is_rejected_when_agents_are_known() -> None:
    """With the set of Puzzel agents given, an agent outside it is an error naming the line."""
    with pytest.raises(ScheduleImportError) as info:
        read("week.csv", known_agents={"1001"})
    assert [(i.where, i.message) for i in info.value.issues] == [
        ("line 7", "unknown agent '1002': Puzzel does not know this user id")
    ]


def test_every_problem_is_reported_not_just_the_first() -> None:
    """Validation runs over the whole file and collects all issues."""
    with pytest.raises(ScheduleImportError) as info:
        parse_csv(
            "agent,start,end,activity\n"
            "1,2026-03-02 08:00,2026-03-02 07:00,phone\n"
            "2,2026-03-02 08:00,2026-03-02 09:00,nap\n"
            "3,yesterday,2026-03-02 09:00,phone\n",
            source="many.csv",
            tz=OSLO,
        )
    wheres = [i.where for i in info.value.issues]
    assert wheres == ["line 2", "line 3", "line 4"]
    assert "not after start" in info.value.issues[0].message


def test_a_segment_may_cross_one_midnight_only() -> None:
    """A segment running into the day after next is rejected (days are read one day back)."""
    with pytest.raises(ScheduleImportError, match="no further"):
        parse_csv(
            "agent,start,end,activity\n1,2026-03-02 22:00,2026-03-04 01:00,off\n",
            source="long.csv",
            tz=OSLO,
        )


def test_csv_header_and_json_syntax_errors_are_located() -> None:
    """A wrong header and broken JSON are reported with the line (and column)."""
    with pytest.raises(ScheduleImportError) as info:
        parse_csv("who,start,end,activity\n1,a,b,c\n", source="h.csv", tz=OSLO)
    assert info.value.issues[0].where == "line 1"
    assert "expected agent,start,end,activity" in info.value.issues[0].message
    with pytest.raises(ScheduleImportError) as info:
        parse_json('[\n {"agent": 1,\n', source="j.json", tz=OSLO)
    assert info.value.issues[0].where.startswith("line 3 column")


def test_json_flat_entries_and_unknown_fields() -> None:
    """Flat JSON entries are accepted; an unknown field is named with its index."""
    plan = parse_json(
        '[{"agent": 7, "start": "2026-03-02 08:00", "end": "12:00", "activity": "Phone"}]',
        source="f.json",
        tz=OSLO,
    )
    assert plan.segments[0].activity == "phone"
    assert plan.segments[0].end == utc(2026, 3, 2, 11)
    with pytest.raises(ScheduleImportError) as info:
        parse_json(
            '[{"agent": 7, "start": "2026-03-02 08:00", "end": "12:00", "activity": "phone",'
            ' "colour": "red"}]',
            source="f.json",
            tz=OSLO,
        )
    assert info.value.issues[0].where == "[0]"
    assert "unknown field(s) colour" in info.value.issues[0].message


def test_json_empty_day_still_covers_the_agent_date() -> None:
    """`segments: []` declares a day off: the plan covers that agent and date with nothing."""
    plan = parse_json('[{"agent": "9", "date": "2026-03-03", "segments": []}]', source="o", tz=OSLO)
    assert plan.segments == ()
    assert plan.agents == {"9"}
    assert plan.dates == {date(2026, 3, 3)}


def test_ics_without_agent_or_with_rrule_is_rejected() -> None:
    """An event with no agent, or a recurring one, is an error naming its UID and line."""
    ics = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\n"
        "BEGIN:VEVENT\nUID:e1\nDTSTART:20260302T080000Z\nDTEND:20260302T090000Z\n"
        "SUMMARY:phone\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:e2\nDTSTART:20260302T080000Z\nDTEND:20260302T090000Z\n"
        "RRULE:FREQ=DAILY\nSUMMARY:agent:5 phone\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    with pytest.raises(ScheduleImportError) as info:
        parse_ics(ics, source="c.ics", tz=OSLO)
    got = [(i.where, i.message.split(":")[0]) for i in info.value.issues]
    assert got == [
        ("event e1 (line 4)", "no agent"),
        ("event e2 (line 10)", "recurring events (RRULE/RDATE) are not supported"),
    ]


@pytest.mark.parametrize("agent", ["abc", "10o1", "١٢"])
def test_an_agent_id_that_is_not_a_puzzel_user_id_is_refused(agent: str) -> None:
    """Puzzel user ids are digits: `abc` is an issue naming the line and the value."""
    text = f"agent,date,start,end,activity\n{agent},2026-03-02,08:00,09:00,phone\n"
    with pytest.raises(ScheduleImportError) as err:
        parse_csv(text, source="team.csv", tz=OSLO)
    assert [str(i) for i in err.value.issues] == [
        f"team.csv: line 2: agent: expected a Puzzel user id (digits only), got {agent!r}"
    ]


@pytest.mark.parametrize(
    "text", ["agent,start,end,activity\n", "agent,start,end,activity\n\n# x\n"]
)
def test_a_header_only_csv_is_refused(text: str) -> None:
    """A CSV with a header and no rows is an error, not an import of nothing."""
    with pytest.raises(ScheduleImportError) as err:
        parse_csv(text, source="week.csv", tz=OSLO)
    assert [str(i) for i in err.value.issues] == [
        "week.csv: line 1 (header only): no segments: nothing to import"
    ]


def test_an_empty_json_list_is_refused() -> None:
    """`[]` imports nothing either, so it is refused the same way."""
    with pytest.raises(ScheduleImportError) as err:
        parse_json("[]", source="week.json", tz=OSLO)
    assert [str(i) for i in err.value.issues] == ["week.json: no segments: nothing to import"]
