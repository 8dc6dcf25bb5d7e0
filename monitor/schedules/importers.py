"""Parsing schedule files (CSV, JSON, iCalendar) into a fully validated `ImportPlan`.

Every entry is checked and every problem collected before anything is returned, so a file is
either accepted whole or rejected with the complete list of what to fix. The formats and rules
are documented in docs/schedules.md.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, Literal

import icalendar
import orjson

from monitor.engine.model import Segment
from monitor.rules.loader import DEFAULT_ACTIVITIES as DEFAULT_ACTIVITY_TABLE
from monitor.schedules.errors import ImportIssue, ScheduleImportError
from monitor.schedules.localtime import (
    LocalTimeError,
    Resolved,
    check_aware,
    local_date,
    local_midnight,
    parse_clock,
    parse_date,
    parse_datetime,
    resolve_local,
)
from monitor.schedules.plan import ImportPlan, check_span

Format = Literal["csv", "json", "ics"]

# the contract's default activities (../shared/scenario-format.md), used when no rules are loaded
# the names of the default activities (their one table is in monitor.rules.loader)
DEFAULT_ACTIVITIES = frozenset(DEFAULT_ACTIVITY_TABLE)

_SUFFIXES: Mapping[str, Format] = {
    ".csv": "csv",
    ".json": "json",
    ".ics": "ics",
    ".ical": "ics",
    ".ifb": "ics",
}
_AGENT_PREFIX = re.compile(r"^\s*agent:\s*(?P<agent>[^\s,;]+)[\s,;:]*(?P<rest>.*)$", re.I)
_BAD_ID = re.compile(r"[\s|]")


@dataclass(slots=True)
class _Entry:
    where: str
    segment: Segment


@dataclass
class _Collector:
    """Accumulates entries, issues and warnings for one source; `plan()` does the cross-entry
    checks (overlaps) and raises if anything was wrong."""

    source: str
    tz: tzinfo
    known_activities: Collection[str]
    known_agents: Collection[str] | None
    issues: list[ImportIssue] = field(default_factory=list)
    warnings: list[ImportIssue] = field(default_factory=list)
    entries: list[_Entry] = field(default_factory=list)
    agents: set[str] = field(default_factory=set)
    dates: set[date] = field(default_factory=set)
    empty_where: str = ""
    """Where to point when the source holds no segments at all (e.g. a CSV's header line)."""

    def __post_init__(self) -> None:
        self._activities = {a.lower(): a for a in self.known_activities}

    def issue(self, where: str, message: str) -> None:
        self.issues.append(ImportIssue(self.source, where, message))

    def resolved(self, where: str, what: str, result: Resolved) -> datetime:
        if result.ambiguous:
            local = result.utc.astimezone(self.tz)
            self.warnings.append(
                ImportIssue(
                    self.source,
                    where,
                    f"{what} {local:%Y-%m-%d %H:%M} is ambiguous in {self.tz} (clocks go back); "
                    f"took the first occurrence ({local:%H:%M%z}); write an offset to choose",
                )
            )
        return result.utc

    def datetime_field(self, where: str, what: str, value: object) -> datetime | None:
        if not isinstance(value, str):
            self.issue(where, f"{what}: expected a date-time string, got {_kind(value)}")
            return None
        try:
            return self.resolved(where, what, parse_datetime(value, self.tz))
        except LocalTimeError as e:
            self.issue(where, f"{what}: {e}")
            return None

    def wall_time(
        self, where: str, what: str, day: date, value: object, *, allow_24: bool = False
    ) -> datetime | None:
        """`HH:MM[:SS]` on local `day`, or a full date-time."""
        if not isinstance(value, str):
            self.issue(where, f"{what}: expected a time string HH:MM, got {_kind(value)}")
            return None
        if "-" in value.strip()[:10]:
            return self.datetime_field(where, what, value)
        try:
            clock, extra = parse_clock(value, allow_24=allow_24)
            naive = datetime.combine(day + timedelta(days=extra), clock)
            return self.resolved(where, what, resolve_local(naive, self.tz))
        except LocalTimeError as e:
            self.issue(where, f"{what}: {e}")
            return None

    def end_after(self, where: str, start: datetime, end_text: object) -> datetime | None:
        """An end written `HH:MM` is on the start's local date, or the next one if it is
        earlier than the start (the segment runs past midnight)."""
        if not isinstance(end_text, str):
            self.issue(where, f"end: expected a time HH:MM or a date-time, got {_kind(end_text)}")
            return None
        if "-" not in end_text.strip()[:10]:
            try:
                clock, extra = parse_clock(end_text, allow_24=True)
            except LocalTimeError as e:
                self.issue(where, f"end: {e}")
                return None
            local_start = start.astimezone(self.tz)
            day = local_start.date() + timedelta(days=extra)
            if extra == 0 and clock == local_start.time().replace(tzinfo=None):
                self.issue(where, f"end {end_text.strip()} is the same as the start")
                return None
            if extra == 0 and clock < local_start.time():
                day += timedelta(days=1)
            try:
                return self.resolved(
                    where, "end", resolve_local(datetime.combine(day, clock), self.tz)
                )
            except LocalTimeError as e:
                self.issue(where, f"end: {e}")
                return None
        return self.datetime_field(where, "end", end_text)

    def agent(self, where: str, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.issue(where, f"agent: expected an agent id, got {_kind(value)}")
            return None
        agent = str(value).strip()
        if not agent or _BAD_ID.search(agent):
            self.issue(where, f"agent: invalid agent id {agent!r} (no blanks or '|')")
            return None
        if not agent.isascii() or not agent.isdigit():
            # Puzzel user ids are numbers; a name here would never match an agent's state
            self.issue(where, f"agent: expected a Puzzel user id (digits only), got {agent!r}")
            return None
        if self.known_agents is not None and agent not in self.known_agents:
            self.issue(where, f"unknown agent {agent!r}: Puzzel does not know this user id")
            return None
        return agent

    def activity(self, where: str, value: object) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.issue(where, f"activity: expected an activity name, got {_kind(value)}")
            return None
        name = self._activities.get(value.strip().lower())
        if name is None:
            known = ", ".join(sorted(self.known_activities))
            self.issue(where, f"unknown activity {value.strip()!r} (known: {known})")
        return name

    def add(self, where: str, agent: str, start: datetime, end: datetime, activity: str) -> None:
        seg = Segment(start, end, agent, activity)
        if end <= start:
            self.issue(
                where,
                f"end {_local(end, self.tz)} is not after start {_local(start, self.tz)}",
            )
            return
        why = check_span(seg, self.tz)
        if why:
            self.issue(where, why)
            return
        self.entries.append(_Entry(where, seg))

    def cover(self, agent: str, day: date) -> None:
        """An agent-day the source declares even with nothing in it (a day off)."""
        self.agents.add(agent)
        self.dates.add(day)

    def plan(self) -> ImportPlan:
        if not self.entries and not self.agents and not self.issues:
            # an empty import would still bump the schedule version and look like success
            self.issue(self.empty_where, "no segments: nothing to import")
        by_agent: dict[str, list[_Entry]] = defaultdict(list)
        for e in self.entries:
            by_agent[e.segment.agent_id].append(e)
        for entries in by_agent.values():
            entries.sort(key=lambda e: (e.segment.start, e.segment.end))
            latest = entries[0]
            for e in entries[1:]:
                if e.segment.start < latest.segment.end:
                    self.issue(
                        e.where,
                        f"agent {e.segment.agent_id}: segment {_show(e.segment, self.tz)} "
                        f"overlaps {_show(latest.segment, self.tz)} ({latest.where})",
                    )
                if e.segment.end > latest.segment.end:
                    latest = e
        if self.issues:
            raise ScheduleImportError(self.issues)
        segments = tuple(sorted(e.segment for e in self.entries))
        return ImportPlan(
            source=self.source,
            tz=self.tz,
            segments=segments,
            agents=frozenset(self.agents | {s.agent_id for s in segments}),
            dates=frozenset(self.dates | {local_date(s.start, self.tz) for s in segments}),
            warnings=tuple(self.warnings),
        )


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str | int | float):
        return f"{value!r}"
    return "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else "?"


def _local(moment: datetime, tz: tzinfo) -> str:
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"


def _show(s: Segment, tz: tzinfo) -> str:
    return f"{_local(s.start, tz)}–{s.end.astimezone(tz):%H:%M} {s.activity}"


# -- CSV -----------------------------------------------------------------------------------------

_CSV_LAYOUTS = (
    ("agent", "start", "end", "activity"),
    ("agent", "date", "start", "end", "activity"),
)
_CSV_ALIASES = {"agent_id": "agent", "user_id": "agent", "userid": "agent"}


def parse_csv(
    text: str,
    *,
    source: str,
    tz: tzinfo,
    known_activities: Collection[str] = DEFAULT_ACTIVITIES,
    known_agents: Collection[str] | None = None,
) -> ImportPlan:
    """CSV with a header row `agent,start,end,activity` (local `YYYY-MM-DD HH:MM[:SS]` or ISO
    with offset) or `agent,date,start,end,activity` (`HH:MM` times; an end earlier than the
    start is on the next day). `;` or tab delimiters are detected; `#` lines are comments."""
    c = _Collector(source, tz, known_activities, known_agents)
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    delimiter = ","
    if "," not in first:
        delimiter = ";" if ";" in first else "\t" if "\t" in first else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    columns: list[str] | None = None
    try:
        for row in reader:
            line = f"line {reader.line_num}"
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if columns is None:
                c.empty_where = f"{line} (header only)"
                columns = _csv_header(c, line, row)
                if columns is None:
                    break
                continue
            if len(row) != len(columns):
                c.issue(
                    line,
                    f"expected {len(columns)} fields ({','.join(columns)}), got {len(row)}",
                )
                continue
            _csv_row(c, line, dict(zip(columns, (cell.strip() for cell in row), strict=True)))
    except csv.Error as e:
        c.issue(f"line {reader.line_num}", f"malformed CSV: {e}")
    if columns is None and not c.issues:
        c.issue("line 1", "no header row: expected agent,start,end,activity")
    return c.plan()


def _csv_header(c: _Collector, line: str, row: list[str]) -> list[str] | None:
    names = [_CSV_ALIASES.get(n.strip().lower(), n.strip().lower()) for n in row]
    for layout in _CSV_LAYOUTS:
        if sorted(names) == sorted(layout):
            return names
    expected = " or ".join(",".join(layout) for layout in _CSV_LAYOUTS)
    c.issue(line, f"header {','.join(n for n in row)!r} does not match: expected {expected}")
    return None


def _csv_row(c: _Collector, line: str, cells: dict[str, str]) -> None:
    empty = [name for name, value in cells.items() if not value]
    if empty:
        c.issue(line, f"empty field(s): {', '.join(empty)}")
        return
    agent = c.agent(line, cells["agent"])
    activity = c.activity(line, cells["activity"])
    start: datetime | None
    if "date" in cells:
        try:
            day: date | None = parse_date(cells["date"])
        except LocalTimeError as e:
            c.issue(line, f"date: {e}")
            day = None
        start = c.wall_time(line, "start", day, cells["start"]) if day else None
    else:
        start = c.datetime_field(line, "start", cells["start"])
    end = c.end_after(line, start, cells["end"]) if start else None
    if agent and activity and start and end:
        c.add(line, agent, start, end, activity)


# -- JSON ----------------------------------------------------------------------------------------

_FLAT_KEYS = {"agent", "start", "end", "activity"}
_DAY_KEYS = {"agent", "date", "segments"}


def parse_json(
    data: bytes | str,
    *,
    source: str,
    tz: tzinfo,
    known_activities: Collection[str] = DEFAULT_ACTIVITIES,
    known_agents: Collection[str] | None = None,
) -> ImportPlan:
    """A JSON list whose items are `{agent, start, end, activity}` (full date-times) or
    `{agent, date, segments: [[start, end, activity], ...]}` (`HH:MM` on `date`). Issues name
    the field path, e.g. `[3].segments[1][0]`."""
    c = _Collector(source, tz, known_activities, known_agents)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        c.issue(f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}")
        return c.plan()
    if not isinstance(doc, list):
        c.issue("(top level)", f"expected a JSON list of entries, got {_json_kind(doc)}")
        return c.plan()
    for i, item in enumerate(doc):
        path = f"[{i}]"
        if not isinstance(item, dict):
            c.issue(path, f"expected an object, got {_json_kind(item)}")
            continue
        keys = set(item)
        layout = _DAY_KEYS if "segments" in item or "date" in item else _FLAT_KEYS
        missing = sorted(layout - keys)
        extra = sorted(keys - layout)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing field(s) {', '.join(missing)}")
            if extra:
                parts.append(f"unknown field(s) {', '.join(extra)}")
            c.issue(path, f"{'; '.join(parts)} (expected {', '.join(sorted(layout))})")
            continue
        agent = c.agent(f"{path}.agent", item["agent"])
        if layout is _FLAT_KEYS:
            activity = c.activity(f"{path}.activity", item["activity"])
            start = c.datetime_field(f"{path}.start", "start", item["start"])
            end = c.end_after(f"{path}.end", start, item["end"]) if start else None
            if agent and activity and start and end:
                c.add(path, agent, start, end, activity)
            continue
        day: date | None = None
        if isinstance(item["date"], str):
            try:
                day = parse_date(item["date"])
            except LocalTimeError as e:
                c.issue(f"{path}.date", str(e))
        else:
            c.issue(
                f"{path}.date", f"expected a date string YYYY-MM-DD, got {_json_kind(item['date'])}"
            )
        segments = item["segments"]
        if not isinstance(segments, list):
            c.issue(f"{path}.segments", f"expected a list, got {_json_kind(segments)}")
            continue
        if agent and day:
            c.cover(agent, day)
        for j, seg in enumerate(segments):
            _json_day_segment(c, f"{path}.segments[{j}]", agent, day, seg)
    return c.plan()


def _json_day_segment(
    c: _Collector, path: str, agent: str | None, day: date | None, seg: object
) -> None:
    fields: tuple[str, str, str]
    if isinstance(seg, list):
        if len(seg) != 3:
            c.issue(path, f"expected [start, end, activity], got {len(seg)} item(s)")
            return
        values = seg
        fields = (f"{path}[0]", f"{path}[1]", f"{path}[2]")
    elif isinstance(seg, dict):
        if set(seg) != {"start", "end", "activity"}:
            c.issue(path, "expected {start, end, activity}")
            return
        values = [seg["start"], seg["end"], seg["activity"]]
        fields = (f"{path}.start", f"{path}.end", f"{path}.activity")
    else:
        c.issue(path, f"expected [start, end, activity], got {_json_kind(seg)}")
        return
    activity = c.activity(fields[2], values[2])
    start = c.wall_time(fields[0], "start", day, values[0]) if day else None
    end = c.end_after(fields[1], start, values[1]) if start else None
    if agent and activity and start and end:
        c.add(path, agent, start, end, activity)


def _json_kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "?")


# -- iCalendar ------------------------------------------------------------------------------------


def parse_ics(
    data: bytes | str,
    *,
    source: str,
    tz: tzinfo,
    known_activities: Collection[str] = DEFAULT_ACTIVITIES,
    known_agents: Collection[str] | None = None,
) -> ImportPlan:
    """VEVENTs become segments. Agent: `X-PUZZEL-AGENT`, else an `agent:<id>` prefix in SUMMARY,
    else each ATTENDEE (its address without `mailto:`). Activity: the first CATEGORIES value that
    is a known activity, else SUMMARY (without the agent prefix). Times with TZID or `Z` are
    exact; floating times are local to `tz`; all-day events cover whole local days."""
    c = _Collector(source, tz, known_activities, known_agents)
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    begins = [
        n for n, ln in enumerate(text.splitlines(), 1) if ln.strip().upper() == "BEGIN:VEVENT"
    ]
    try:
        cal = icalendar.Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as e:
        c.issue("", f"not a valid iCalendar file: {e}")
        return c.plan()
    for i, event in enumerate(cal.walk("VEVENT")):
        line = begins[i] if i < len(begins) else 0
        uid = str(event.get("UID", "")).strip()
        where = f"event {uid} (line {line})" if uid else f"event #{i + 1} (line {line})"
        _ics_event(c, where, event)
    return c.plan()


def _ics_values(prop: object) -> list[object]:
    if prop is None:
        return []
    return list(prop) if isinstance(prop, list) else [prop]


def _ics_event(c: _Collector, where: str, event: Any) -> None:
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return
    if event.get("RRULE") is not None or event.get("RDATE") is not None:
        c.issue(where, "recurring events (RRULE/RDATE) are not supported: export them expanded")
        return
    summary = str(event.get("SUMMARY", "")).strip()
    agents = [
        a.strip() for v in _ics_values(event.get("X-PUZZEL-AGENT")) for a in str(v).split(",")
    ]
    m = _AGENT_PREFIX.match(summary)
    if m:
        summary = m["rest"].strip()
        if not agents:
            agents = [m["agent"]]
    if not agents:
        agents = [
            re.sub(r"^mailto:", "", str(a), flags=re.I) for a in _ics_values(event.get("ATTENDEE"))
        ]
    agents = [a for a in agents if a]
    if not agents:
        c.issue(
            where,
            "no agent: give X-PUZZEL-AGENT, an ATTENDEE or an 'agent:<id>' prefix in SUMMARY",
        )
    categories = [
        str(cat).strip()
        for v in _ics_values(event.get("CATEGORIES"))
        for cat in getattr(v, "cats", [v])
    ]
    known = {a.lower() for a in c.known_activities}
    chosen = next((cat for cat in categories if cat.lower() in known), None)
    if chosen is None and not summary and categories:
        chosen = categories[0]
    activity = c.activity(where, chosen if chosen is not None else summary)
    valid_agents = [a for a in (c.agent(where, a) for a in agents) if a]

    dtstart = event.get("DTSTART")
    if dtstart is None:
        c.issue(where, "no DTSTART")
        return
    start_value = dtstart.dt
    dtend = event.get("DTEND")
    duration = event.get("DURATION")
    spans: list[tuple[datetime, datetime]] = []
    if not isinstance(start_value, datetime):  # all-day: whole local days
        last = (
            dtend.dt
            if dtend is not None
            else start_value + (duration.dt if duration is not None else timedelta(days=1))
        )
        if isinstance(last, datetime):
            last = last.date()
        if last <= start_value:
            c.issue(where, f"DTEND {last} is not after DTSTART {start_value}")
            return
        day = start_value
        while day < last:
            spans.append((local_midnight(day, c.tz), local_midnight(day + timedelta(1), c.tz)))
            day += timedelta(days=1)
    else:
        start = _ics_time(c, where, "DTSTART", start_value)
        if dtend is not None:
            end_value = dtend.dt
            if not isinstance(end_value, datetime):
                end_value = datetime.combine(end_value, time(0))
            end = _ics_time(c, where, "DTEND", end_value)
        elif duration is not None and start is not None:
            end = start + duration.dt
        else:
            c.issue(where, "no DTEND or DURATION")
            return
        if start is None or end is None:
            return
        spans.append((start, end))
    if activity is None or not valid_agents:
        return
    for agent in valid_agents:
        for s, e in spans:
            c.add(where, agent, s, e, activity)


def _ics_time(c: _Collector, where: str, what: str, value: datetime) -> datetime | None:
    if value.microsecond:
        c.issue(where, f"{what}: fractions of a second are not supported")
        return None
    try:
        if value.tzinfo is None:
            return c.resolved(where, what, resolve_local(value, c.tz))
        return c.resolved(where, what, check_aware(value))
    except LocalTimeError as e:
        c.issue(where, f"{what}: {e}")
        return None


# -- entry points ----------------------------------------------------------------------------------


def parse_schedule(
    data: bytes | str,
    *,
    fmt: Format,
    source: str,
    tz: tzinfo,
    known_activities: Collection[str] = DEFAULT_ACTIVITIES,
    known_agents: Collection[str] | None = None,
) -> ImportPlan:
    """Parse and validate a schedule in format `fmt`; raises ScheduleImportError."""
    if fmt == "json":
        return parse_json(
            data,
            source=source,
            tz=tz,
            known_activities=known_activities,
            known_agents=known_agents,
        )
    if fmt == "ics":
        return parse_ics(
            data,
            source=source,
            tz=tz,
            known_activities=known_activities,
            known_agents=known_agents,
        )
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise ScheduleImportError([ImportIssue(source, "", f"not UTF-8 text: {e}")]) from None
    return parse_csv(
        text, source=source, tz=tz, known_activities=known_activities, known_agents=known_agents
    )


def format_for(path: Path) -> Format:
    """The format of a schedule file, from its name."""
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ScheduleImportError(
            [ImportIssue(str(path), "", "unknown file type: expected .csv, .json or .ics (.ical)")]
        )
    return fmt


def read_schedule_file(
    path: Path,
    *,
    tz: tzinfo,
    known_activities: Collection[str] = DEFAULT_ACTIVITIES,
    known_agents: Collection[str] | None = None,
    fmt: Format | None = None,
) -> ImportPlan:
    """Read and validate a schedule file (format from its suffix unless given)."""
    fmt = fmt or format_for(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ScheduleImportError([ImportIssue(str(path), "", f"cannot read: {e}")]) from None
    return parse_schedule(
        data,
        fmt=fmt,
        source=str(path),
        tz=tz,
        known_activities=known_activities,
        known_agents=known_agents,
    )
