"""ScheduleStore keeps schedules in Redis as UTC, filed by local date, replaced atomically."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from monitor.engine.model import Segment
from monitor.schedules.errors import ScheduleImportError
from monitor.schedules.importers import read_schedule_file
from monitor.schedules.store import ScheduleStore
from tests.schedules.conftest import DATA, OSLO, dump_all

H = timedelta(hours=1)
MON = date(2026, 3, 2)
TUE = date(2026, 3, 3)


def oslo(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=OSLO).astimezone(UTC)


def seg(agent: str, day: date, start: tuple[int, int], end: tuple[int, int], act: str) -> Segment:
    s = oslo(day, *start)
    e = oslo(day, *end)
    return Segment(s, e if e > s else oslo(day + timedelta(days=1), *end), agent, act)


async def test_round_trip_and_split_shift(store: ScheduleStore) -> None:
    """A split shift written for a day reads back unchanged for the day and the agent."""
    plan = read_schedule_file(DATA / "week.csv", tz=OSLO)
    result = await store.apply("t1", plan)
    assert (result.added, result.removed, result.version) == (5, 0, 1)
    day = await store.segments_for_day("t1", OSLO, MON)
    assert sorted(day) == ["1001", "1002"]
    assert sorted(day["1001"] + day["1002"]) == sorted(plan.segments)
    agent = await store.agent_day("t1", OSLO, "1001", MON)
    assert [(s.start.astimezone(OSLO).strftime("%H:%M"), s.activity) for s in agent] == [
        ("08:00", "phone"),
        ("11:00", "lunch"),
        ("11:30", "phone"),
        ("17:00", "phone"),
    ]
    assert await store.current("t1", "1001", oslo(MON, 14)) is None  # the gap
    assert (await store.current("t1", "1001", oslo(MON, 18))) == agent[3]


async def test_shift_past_midnight_reads_on_both_dates(store: ScheduleStore) -> None:
    """A night shift is filed under its start date and also appears on the next date."""
    await store.apply("t1", read_schedule_file(DATA / "night.csv", tz=OSLO))
    monday = await store.agent_day("t1", OSLO, "1003", MON)
    tuesday = await store.agent_day("t1", OSLO, "1003", TUE)
    assert [s.activity for s in monday] == ["phone"]
    assert monday[0].end == oslo(TUE, 2)
    assert [s.activity for s in tuesday] == ["phone", "break", "phone"]  # 22:00–02:00 runs in
    assert tuesday[0] == monday[0]
    assert (await store.segments_for_day("t1", OSLO, TUE))["1003"] == tuesday
    assert await store.agent_day("t1", OSLO, "1003", date(2026, 3, 4)) == []
    assert (await store.current("t1", "1003", oslo(TUE, 1))) == monday[0]
    now = await store.current("t1", "1003", oslo(TUE, 2, 15))
    assert now is not None
    assert now.activity == "break"


async def test_dst_days_keep_their_durations(store: ScheduleStore) -> None:
    """Stored DST-day shifts read back with 9 h, 5 h (spring) and 7 h (autumn) lengths."""
    await store.apply("t1", read_schedule_file(DATA / "dst.json", tz=OSLO))

    async def hours(agent: str, day: date) -> float:
        segs = await store.agent_day("t1", OSLO, agent, day)
        return sum((s.end - s.start for s in segs), timedelta()) / H

    assert await hours("2001", date(2026, 3, 29)) == 9
    assert await hours("2001", date(2026, 10, 25)) == 9
    assert await hours("2002", date(2026, 3, 29)) == 5
    assert await hours("2002", date(2026, 10, 25)) == 7
    first = (await store.agent_day("t1", OSLO, "2002", date(2026, 3, 29)))[0]
    assert first.start.astimezone(OSLO).hour == 0
    assert first.end.astimezone(OSLO).hour == 6


async def test_replace_swaps_agent_days_atomically(
    store: ScheduleStore, redis_client: aioredis.Redis
) -> None:
    """Replacing an agent's day removes its old segments everywhere and leaves others alone."""
    await store.replace(
        "t1",
        OSLO,
        [seg("a", MON, (8, 0), (12, 0), "phone"), seg("b", MON, (9, 0), (17, 0), "phone")],
    )
    v1 = await store.version("t1")
    result = await store.replace("t1", OSLO, [seg("a", MON, (13, 0), (15, 0), "training")])
    assert (result.removed, result.added, result.version) == (1, 1, v1 + 1)
    window = await store.segments_between("t1", oslo(MON, 0), oslo(TUE, 0))
    assert {a: [(s.activity, s.start) for s in v] for a, v in window.items()} == {
        "a": [("training", oslo(MON, 13))],
        "b": [("phone", oslo(MON, 9))],
    }
    assert await redis_client.zcard(store.timeline_key("t1")) == 2
    await store.delete_agent_day("t1", OSLO, "a", MON)
    assert sorted(await store.segments_for_day("t1", OSLO, MON)) == ["b"]
    assert await redis_client.smembers(store.agents_key("t1", MON)) == {b"b"}
    assert await store.version("t1") == v1 + 2


async def test_replace_with_explicit_scope_clears_days_without_segments(
    store: ScheduleStore,
) -> None:
    """agents × dates is replaced whole, so an agent-day with no new segments is emptied."""
    await store.replace(
        "t1", OSLO, [seg("a", MON, (8, 0), (9, 0), "phone"), seg("a", TUE, (8, 0), (9, 0), "phone")]
    )
    await store.replace(
        "t1", OSLO, [seg("a", MON, (10, 0), (11, 0), "phone")], agents={"a"}, dates={MON, TUE}
    )
    assert await store.agent_day("t1", OSLO, "a", TUE) == []
    assert len(await store.agent_day("t1", OSLO, "a", MON)) == 1
    with pytest.raises(ValueError, match="outside"):
        await store.replace(
            "t1", OSLO, [seg("a", TUE, (8, 0), (9, 0), "phone")], agents={"a"}, dates={MON}
        )


async def test_segments_between_finds_long_segments_started_before_the_window(
    store: ScheduleStore,
) -> None:
    """A window read looks back as far as the longest stored segment."""
    await store.replace("t1", OSLO, [seg("a", MON, (0, 0), (0, 0), "off")])  # 24 h
    found = await store.segments_between("t1", oslo(MON, 23), oslo(MON, 23, 30))
    assert [s.activity for s in found["a"]] == ["off"]
    assert await store.segments_between("t1", oslo(TUE, 0), oslo(TUE, 1)) == {}


async def test_current_boundaries(store: ScheduleStore) -> None:
    """current() includes a segment's start and excludes its end; tenants are separate."""
    s = seg("a", MON, (8, 0), (10, 0), "phone")
    await store.replace("t1", OSLO, [s])
    assert await store.current("t1", "a", oslo(MON, 8)) == s
    assert await store.current("t1", "a", oslo(MON, 9, 59)) == s
    assert await store.current("t1", "a", oslo(MON, 10)) is None
    assert await store.current("t1", "a", oslo(MON, 7, 59)) is None
    assert await store.current("t2", "a", oslo(MON, 9)) is None
    assert await store.version("t2") == 0


async def test_overlap_with_a_kept_neighbour_day_is_refused_unchanged(
    store: ScheduleStore, redis_client: aioredis.Redis
) -> None:
    """A new early segment that collides with yesterday's night shift fails and writes nothing."""
    await store.replace("t1", OSLO, [seg("a", MON, (22, 0), (4, 0), "phone")])
    before = await dump_all(redis_client)
    with pytest.raises(ScheduleImportError) as info:
        await store.replace("t1", OSLO, [seg("a", TUE, (3, 0), (9, 0), "phone")])
    assert "overlaps the stored segment 2026-03-02 22:00–04:00 phone" in str(info.value)
    assert await dump_all(redis_client) == before


@pytest.mark.parametrize(
    "name",
    ["bad_activity.csv", "bad_overlap.csv", "bad_dst.csv", "bad_row.csv", "bad_field.json"],
)
async def test_rejected_import_leaves_redis_exactly_as_it_was(
    store: ScheduleStore, redis_client: aioredis.Redis, name: str
) -> None:
    """Validation runs before any write: a bad file changes no key."""
    await store.apply("t1", read_schedule_file(DATA / "week.csv", tz=OSLO))
    before = await dump_all(redis_client)
    assert before
    with pytest.raises(ScheduleImportError):
        await store.apply("t1", read_schedule_file(DATA / name, tz=OSLO))
    assert await dump_all(redis_client) == before


async def test_malformed_segments_are_refused(store: ScheduleStore) -> None:
    """Naive times, empty or reversed segments and '|' in names never reach Redis."""
    naive = Segment(datetime(2026, 3, 2, 8), datetime(2026, 3, 2, 9), "a", "phone")
    with pytest.raises(ValueError, match="naive"):
        await store.replace("t1", OSLO, [naive])
    with pytest.raises(ValueError, match="not after"):
        await store.replace("t1", OSLO, [Segment(oslo(MON, 9), oslo(MON, 8), "a", "phone")])
    with pytest.raises(ValueError, match="invalid agent"):
        await store.replace("t1", OSLO, [Segment(oslo(MON, 8), oslo(MON, 9), "a|b", "phone")])
    assert await store.version("t1") == 0


async def test_concurrent_writers_of_different_agents_all_land(
    store: ScheduleStore, redis_client: aioredis.Redis
) -> None:
    """Writers of different agents conflict on the tenant's version (the one key watched) and
    retry: every agent's day lands, each write counted once."""
    writers = [[seg(f"a{i}", MON, (8, 0), (9, 0), "phone")] for i in range(20)]
    await asyncio.gather(*(store.replace("t1", OSLO, w) for w in writers))
    for i, w in enumerate(writers):
        assert await store.agent_day("t1", OSLO, f"a{i}", MON) == w
    assert await redis_client.zcard(store.timeline_key("t1")) == len(writers)
    assert await store.version("t1") == len(writers)


async def test_concurrent_replacements_never_mix(
    store: ScheduleStore, redis_client: aioredis.Redis
) -> None:
    """Concurrent writers of the same agent-day leave exactly one writer's schedule, indexed."""
    writers = [
        [seg("a", MON, (h, 0), (h, 30), "phone"), seg("a", MON, (h, 30), (h + 1, 0), "break")]
        for h in range(6, 18)
    ]
    await asyncio.gather(*(store.replace("t1", OSLO, w) for w in writers))
    day = await store.agent_day("t1", OSLO, "a", MON)
    assert day in writers
    assert await redis_client.zcard(store.timeline_key("t1")) == 2
    assert await store.version("t1") == len(writers)
