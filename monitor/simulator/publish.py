"""The schedules a simulated centre follows, for the monitor: a random centre's as a schedule
file, a scenario's (moved to start now) straight into the schedule store.

A random centre's day is a pure function of its seed, the agent and the date, so the file can be
written by a separate process (the compose stack's `schedules` service) and still match what the
running simulator does. Every agent gets every date, an empty day when it has the day off, so an
import covers the whole roster and no agent shows up as unknown."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from monitor.schedules.store import ReplaceResult, ScheduleStore
from monitor.simulator.centre import RandomCentre
from monitor.simulator.scenario import Scenario, ScenarioAgent, ScenarioQueue


def schedule_document(centre: RandomCentre, first: date, days: int) -> list[dict[str, Any]]:
    """The JSON import format (docs/schedules.md): one agent-day per agent and local date."""
    tz = centre.timezone
    out: list[dict[str, Any]] = []
    for n in range(days):
        day = first + timedelta(days=n)
        by_agent: dict[str, list[list[str]]] = defaultdict(list)
        for s in centre.schedules_for(day):
            by_agent[s.agent_id].append([_local(s.start, tz), _local(s.end, tz), s.activity])
        for user in centre.users():
            segments = by_agent.get(user.agent_id, [])
            out.append({"agent": user.agent_id, "date": day.isoformat(), "segments": segments})
    return out


def _local(moment: datetime, tz: ZoneInfo) -> str:
    # the importer reads zone-less times in the tenant's zone, the one the centre plans in
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def write_schedules(centre: RandomCentre, path: Path, first: date, days: int) -> int:
    """Write `days` days from `first` to `path` (atomically: a reader never sees half a file);
    return the number of segments."""
    document = schedule_document(centre, first, days)
    tmp = path.with_name(f".{path.name}.tmp")
    lines = ",\n".join(json.dumps(item) for item in document)  # one agent-day a line
    tmp.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    tmp.replace(path)
    return sum(len(d["segments"]) for d in document)


def started_now(scenario: Scenario, now: datetime) -> Scenario:
    """`scenario` moved in time so that it starts at `now` (whole seconds): every state change,
    queue change and schedule segment keeps its distance from the start, so a monitor on the
    wall clock sees the scenario's incidents as they were written. Its `expect` times no longer
    apply and are dropped."""
    start = now.replace(microsecond=0) + timedelta(seconds=1 if now.microsecond else 0)
    delta = start - scenario.start

    def agent(a: ScenarioAgent) -> ScenarioAgent:
        return replace(
            a,
            segments=tuple(
                replace(s, start=s.start + delta, end=s.end + delta) for s in a.segments
            ),
            states=tuple((at + delta, state) for at, state in a.states),
        )

    def queue(q: ScenarioQueue) -> ScenarioQueue:
        return replace(q, states=tuple((at + delta, fields) for at, fields in q.states))

    return replace(
        scenario,
        start=scenario.start + delta,
        end=scenario.end + delta,
        agents=tuple(agent(a) for a in scenario.agents),
        queues=tuple(queue(q) for q in scenario.queues),
        expect=None,
    )


async def load_scenario_schedules(
    scenario: Scenario, redis: aioredis.Redis, *, key_prefix: str = "pzm"
) -> ReplaceResult:
    """Make the scenario's schedules the whole schedule of its agents on the dates they cover,
    in the store `run` reads (tenant: the scenario's customer key)."""
    return await ScheduleStore(redis, key_prefix=key_prefix).replace(
        scenario.customer_key,
        scenario.timezone,
        [s for a in scenario.agents for s in a.segments],
        agents={a.id for a in scenario.agents},
    )
