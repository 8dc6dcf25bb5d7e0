"""Schedules: segments per agent in Redis, importers (CSV, JSON, iCalendar), CLI and HTTP API."""

from monitor.schedules.errors import ImportIssue, ScheduleImportError
from monitor.schedules.importers import parse_schedule, read_schedule_file
from monitor.schedules.plan import ImportPlan
from monitor.schedules.store import ReplaceResult, ScheduleStore

__all__ = [
    "ImportIssue",
    "ImportPlan",
    "ReplaceResult",
    "ScheduleImportError",
    "ScheduleStore",
    "parse_schedule",
    "read_schedule_file",
]
