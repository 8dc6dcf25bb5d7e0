"""Scripted mode: a contact centre that reports exactly what a scenario file says.

At time t every agent is in `scenario.state_at(agent, t)` since `scenario.state_since(agent, t)`,
and every visual queue reports `scenario.queue_fields_at(queue, t)`. The agents' 'today' tickers
(calls offered/answered, logged-on and pause seconds) are derived from the scripted states.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta

from monitor.core.states import LOGGED_OFF, AgentState, StateKind
from monitor.engine.model import Segment
from monitor.simulator.backend import (
    AccessPointTicker,
    AgentTicker,
    SystemQueue,
    User,
    UserGroup,
    VisualQueue,
    pause_type_ids,
)
from monitor.simulator.scenario import Scenario

FIRST_GROUP_ID = 20601
FIRST_SYSTEM_QUEUE_ID = 38301
FIRST_SERVICE_ID = 901


def _puzzel_id(text: str) -> int | str:
    """Puzzel ids are integers; a scenario id that is not one is served as written."""
    return int(text) if text.isdigit() else text


class ScriptedCentre:
    """Serves a `Scenario` as it stands at the time last passed to `advance_to`."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.timezone = scenario.timezone
        self._now = scenario.start
        group_names = list(dict.fromkeys(a.group for a in scenario.agents))
        self._groups = [UserGroup(FIRST_GROUP_ID + i, n) for i, n in enumerate(group_names)]
        group_ids = {g.name: g.id for g in self._groups}
        self._users = []
        for agent in scenario.agents:
            first, _, last = agent.name.partition(" ")
            self._users.append(
                User(
                    id=_puzzel_id(agent.id),
                    group_id=group_ids[agent.group],
                    group_name=agent.group,
                    first_name=first,
                    last_name=last,
                    user_name=re.sub(r"\W+", ".", agent.name.lower()).strip(".") or agent.id,
                )
            )
        self._timelines = {a.id: _Timeline(a.states) for a in scenario.agents}
        # every state entry of every agent, in time order, played forward by advance_to
        self._events = sorted(
            (at.timestamp(), at, a.id, state) for a in scenario.agents for at, state in a.states
        )
        self._reset()
        self._tickers: tuple[datetime, dict[str, AgentTicker]] | None = None
        self._pause_types = pause_type_ids(scenario.pause_type_names())
        self._queues = [
            VisualQueue(
                id=_puzzel_id(q.id),
                description=q.description,
                queues=(
                    SystemQueue(
                        id=FIRST_SYSTEM_QUEUE_ID + i,
                        key="q_" + (re.sub(r"\W+", "_", q.description.lower()).strip("_") or q.id),
                        description=q.description,
                        service_id=FIRST_SERVICE_ID + i,
                    ),
                ),
            )
            for i, q in enumerate(scenario.queues)
        ]

    @property
    def now(self) -> datetime:
        return self._now

    def _reset(self) -> None:
        self._pos = 0
        self._played_to = float("-inf")
        self._current = {a.id: (LOGGED_OFF, self.scenario.start) for a in self.scenario.agents}
        self._counts = {a.id: (0, 0) for a in self.scenario.agents}
        self._day_end = float("-inf")

    def _local_day_bounds(self, ts: float) -> tuple[float, float]:
        day = datetime.fromtimestamp(ts, UTC).astimezone(self.timezone).date()
        start = datetime.combine(day, time()).replace(tzinfo=self.timezone)
        end = datetime.combine(day + timedelta(days=1), time()).replace(tzinfo=self.timezone)
        return start.timestamp(), end.timestamp()

    def advance_to(self, t: datetime) -> None:
        """Play the scripted state changes up to `t` (incrementally: polls only move forward)."""
        self._now = t.astimezone(UTC)
        ts = self._now.timestamp()
        if ts < self._played_to:
            self._reset()
        events, current = self._events, self._current
        while self._pos < len(events) and events[self._pos][0] <= ts:
            at_ts, at, agent_id, state = events[self._pos]
            self._pos += 1
            if at_ts >= self._day_end:
                self._new_day(at_ts)
            prev, since = current[agent_id]
            # a first `logged_off` earlier than the start continues the initial one from there
            if state != prev or at < since:
                since = at
            current[agent_id] = (state, since)
            offered, answered = self._counts[agent_id]
            self._counts[agent_id] = (
                offered + (state.kind in _ON_CONTACT and prev.kind not in _ON_CONTACT),
                answered + (state.kind is StateKind.CONNECTED and prev != state),
            )
        if ts >= self._day_end:
            self._new_day(ts)
        self._played_to = ts

    def _new_day(self, ts: float) -> None:
        """Local midnight passed: the 'today' call counts start again."""
        _, self._day_end = self._local_day_bounds(ts)
        self._counts = dict.fromkeys(self._counts, (0, 0))

    def user_groups(self) -> Sequence[UserGroup]:
        return list(self._groups)

    def users(self) -> Sequence[User]:
        return list(self._users)

    def pause_types(self) -> Mapping[str, int]:
        return dict(self._pause_types)

    def visual_queues(self) -> Sequence[VisualQueue]:
        return list(self._queues)

    def agent_states(self) -> dict[str, tuple[AgentState, datetime]]:
        return dict(self._current)

    def agent_call_counts(self) -> dict[str, tuple[int, int]]:
        return dict(self._counts)

    def agent_tickers(self) -> dict[str, AgentTicker]:
        now = self._now
        local_midnight = datetime.combine(now.astimezone(self.timezone).date(), time())
        day_start = local_midnight.replace(tzinfo=self.timezone).astimezone(UTC)
        if self._tickers is None or self._tickers[0] != now:
            start_ts, now_ts = day_start.timestamp(), now.timestamp()
            tickers = {a: tl.ticker(start_ts, now_ts) for a, tl in self._timelines.items()}
            self._tickers = (now, tickers)
        return dict(self._tickers[1])

    def queue_fields(self) -> dict[str, dict[str, float]]:
        return {q.id: self.scenario.queue_fields_at(q.id, self._now) for q in self.scenario.queues}

    def access_points(self) -> Sequence[AccessPointTicker]:
        out = []
        for i, q in enumerate(self.scenario.queues):
            fields = self.scenario.queue_fields_at(q.id, self._now)
            out.append(
                AccessPointTicker(
                    access_point=str(22_001_000 + i),
                    description=q.description,
                    requests_offered=int(fields.get("callsOfferedToday", 0)),
                    requests_answered=int(fields.get("callsAnsweredToday", 0)),
                )
            )
        return out

    def schedules(self) -> list[Segment]:
        return sorted(s for a in self.scenario.agents for s in a.segments)


_ON_CONTACT = (StateKind.CONNECTING, StateKind.CONNECTED)


class _Timeline:
    """One agent's scripted states with running totals, so a ticker is two lookups, not a scan.

    Totals run from the first state; a 'today' figure is the total at now minus the total at
    local midnight.
    """

    def __init__(self, states: tuple[tuple[datetime, AgentState], ...]) -> None:
        self.times = [at.timestamp() for at, _ in states]  # floats bisect fast
        self.states = [s for _, s in states]
        self.on_before: list[float] = []  # logged-on seconds before state i
        self.pause_before: list[dict[str, float]] = []
        self.offers = [0]  # offers among states[:i]
        self.answers = [0]
        self.sessions: list[datetime | None] = []  # logon time in force at state i
        on, session = 0.0, None
        pauses: dict[str, float] = {}
        prev = LOGGED_OFF
        for i, (at, state) in enumerate(states):
            if i > 0:
                span = at.timestamp() - self.times[i - 1]
                if prev.logged_on:
                    on += span
                if prev.kind is StateKind.PAUSE:
                    key = prev.pause_type or ""
                    pauses = {**pauses, key: pauses.get(key, 0.0) + span}
            self.on_before.append(on)
            self.pause_before.append(pauses)
            offered = state.kind in _ON_CONTACT and prev.kind not in _ON_CONTACT
            answered = state.kind is StateKind.CONNECTED and prev != state
            self.offers.append(self.offers[-1] + offered)
            self.answers.append(self.answers[-1] + answered)
            if state.logged_on and not prev.logged_on:
                session = at
            self.sessions.append(session)
            prev = state

    def _totals(self, t: float) -> tuple[float, dict[str, float]]:
        i = bisect.bisect_right(self.times, t) - 1
        if i < 0:
            return 0.0, {}
        state, span = self.states[i], t - self.times[i]
        on = self.on_before[i] + (span if state.logged_on else 0.0)
        pauses = dict(self.pause_before[i])
        if state.kind is StateKind.PAUSE:
            key = state.pause_type or ""
            pauses[key] = pauses.get(key, 0.0) + span
        return on, pauses

    def ticker(self, day_start: float, now: float) -> AgentTicker:
        on_now, pauses_now = self._totals(now)
        on_then, pauses_then = self._totals(min(day_start, now))
        first_today = bisect.bisect_left(self.times, day_start)
        upto_now = bisect.bisect_right(self.times, now)
        current = upto_now - 1
        return AgentTicker(
            calls_offered=max(0, self.offers[upto_now] - self.offers[first_today]),
            calls_answered=max(0, self.answers[upto_now] - self.answers[first_today]),
            logged_on_seconds=on_now - on_then,
            pause_seconds={
                k: v - pauses_then.get(k, 0.0)
                for k, v in pauses_now.items()
                if v - pauses_then.get(k, 0.0) > 0
            },
            session_start=self.sessions[current] if current >= 0 else None,
        )
