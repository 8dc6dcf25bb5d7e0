"""Intervals from a scripted simulator day (replayed: simulator over HTTP, the real pollers and
pipeline, a real redis-server) match the figures computed by hand for every interval, across a
monitor restart in mid-interval and across local midnight, where Puzzel's today counters
reset."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from monitor.core.keys import RedisKeys
from monitor.history.queue_store import QueueIntervalRecorder
from monitor.simulator.replay import run_replay
from monitor.simulator.scenario import parse_scenario

OSLO = ZoneInfo("Europe/Oslo")


def _q(at: str, counts: tuple[int, int, int, int], wait_max: int, ready: int) -> str:
    offered, answered, abandoned, within = counts
    return (
        f"      - [{at}, {{callsOfferedToday: {offered}, callsAnsweredToday: {answered}, "
        f"callsAbandonedToday: {abandoned}, callsAnsweredWithinSla: {within}, "
        f"waitTimeMaxSeconds: {wait_max}, agentsLoggedOn: 4, agentsReady: {ready}}}]"
    )


# Puzzel's today counters as the queue shows them; they reset at local midnight
STATES = [
    _q("23:40:00", (100, 90, 10, 80), 20, 2),  # first sight: no delta (nothing seen before)
    _q("23:43:00", (104, 93, 10, 82), 40, 1),  # +4 offered, +3 answered, +2 within
    _q("23:46:00", (110, 97, 11, 85), 60, 0),  # next interval: +6, +4, +1 abandoned, +3 within
    _q("23:52:00", (112, 99, 11, 86), 10, 3),  # +2, +2, +1 within   -- restart at 23:53
    _q("23:59:00", (115, 101, 12, 87), 30, 2),  # +3, +2, +1, +1
    _q("2026-03-03T00:03:00", (2, 1, 1, 1), 50, 1),  # after the reset: +2, +1, +1, +1
    _q("2026-03-03T00:11:00", (5, 3, 1, 3), 0, 4),  # +3, +2, 0, +2
]
SCENARIO = "\n".join(
    [
        "name: queue intervals across midnight",
        'tenant: {customer_key: "12345", timezone: Europe/Oslo}',
        "start: 2026-03-02T23:40:00",
        "end: 2026-03-03T00:20:00",
        "rules:\n  out_of_adherence: {after: 5m}",
        "agents:",
        "  - id: 1001",
        "    name: Ada Nilsen",
        "    group: Support",
        "    schedule:\n      - [23:30, 00:30, phone]",
        "    states:\n      - [23:29:00, available]",
        "queues:",
        "  - id: 4101",
        "    description: Support NO",
        "    states:",
        *STATES,
    ]
)


async def test_replayed_intervals_across_a_restart_and_midnight(
    redis_client: aioredis.Redis,
) -> None:
    sc = parse_scenario(SCENARIO + "\n", "intervals")
    restart = datetime(2026, 3, 2, 23, 53, tzinfo=OSLO)
    await run_replay(sc, redis=redis_client, stop_at=restart)
    await run_replay(sc, redis=redis_client)  # a fresh monitor on the same Redis
    rec = QueueIntervalRecorder(redis_client, tenant="12345", tz=OSLO)
    intervals = await rec.read_day(date(2026, 3, 2)) + await rec.read_day(date(2026, 3, 3))
    got = [
        (i["queue"], i["start"][11:16], i["offered"], i["answered"], i["abandoned"],
         i["answered_within_sla"], i["longest_wait_seconds"])
        for i in intervals
    ]  # fmt: skip
    assert got == [
        ("4101", "23:30", 4, 3, 0, 2, 40),
        ("4101", "23:45", 6 + 2 + 3, 4 + 2 + 2, 1 + 0 + 1, 3 + 1 + 1, 60),
        ("4101", "00:00", 2 + 3, 1 + 2, 1 + 0, 1 + 2, 50),
    ]
    late = intervals[1]
    assert late["service_level"] == 5 / (8 + 2)  # answered within / (answered + abandoned)
    assert late["samples"] == 4  # 23:45 (the bound), 23:46, 23:52, 23:59
    # the restarted replay went over the polls up to 23:52 again: dropped, counted, not resets
    state = json.loads(await redis_client.get(RedisKeys().queue_interval_state("12345")))
    assert state["dropped"] == 5
