"""A tiny harness for engine tests: play state timelines through the engine at a poll cadence,
with poll-derived `since` (the first poll that saw a state), as the tracker reports them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.core.snapshots import AgentObservation
from monitor.core.states import AgentState, StateKind
from monitor.engine.approvals import Approvals
from monitor.engine.engine import EngineState, account_until, evaluate_agents
from monitor.engine.model import AlertTransition, RuleSet, Segment

OSLO = ZoneInfo("Europe/Oslo")
TENANT = "12345"


def local(day: str, hms: str, tz: ZoneInfo = OSLO) -> datetime:
    """A local wall-clock time as UTC."""
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=tz).astimezone(UTC)


def st(text: str) -> AgentState:
    """`available`, `pause:Break`, `wrap_up`, `unknown` ..."""
    if text == "unknown":
        return AgentState(StateKind.UNKNOWN, raw="LoggedOn/System")
    kind, _, pause = text.partition(":")
    return AgentState.parse(kind, pause or None)


def segments(agent: str, day: str, rows: Sequence[tuple[str, str, str]]) -> list[Segment]:
    """Segments from local [start, end, activity] rows (an end before its start: next day)."""
    out = []
    for start, end, activity in rows:
        s, e = local(day, start), local(day, end)
        if e <= s:
            e = local((datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat(), end)
        out.append(Segment(s, e, agent, activity))
    return out


@dataclass
class Run:
    transitions: list[AlertTransition] = field(default_factory=list)
    state: EngineState = field(default_factory=EngineState)

    def alerts(self, rule: str | None = None) -> list[tuple[str, str, datetime, datetime]]:
        """(rule, status, at, ideal_at) in emission order."""
        return [
            (t.rule.value, t.status, t.at, t.ideal_at)
            for t in self.transitions
            if rule is None or t.rule.value == rule
        ]

    def ideal(self, rule: str, tz: ZoneInfo = OSLO) -> list[tuple[str, str]]:
        """(status, local HH:MM:SS of ideal_at) for one rule."""
        return [
            (t.status, t.ideal_at.astimezone(tz).strftime("%H:%M:%S"))
            for t in self.transitions
            if t.rule.value == rule
        ]


def drive(
    timelines: Mapping[str, Sequence[tuple[datetime, AgentState]]],
    schedules: Mapping[str, Sequence[Segment]],
    ruleset: RuleSet,
    start: datetime,
    end: datetime,
    *,
    cadence: timedelta = timedelta(seconds=5),
    team: str = "Support",
    state: EngineState | None = None,
    hook: Callable[[datetime, EngineState], EngineState] | None = None,
    approvals: Callable[[datetime], Approvals] | None = None,
) -> Run:
    """Poll every `cadence` from `start` to `end` inclusive; before its first entry an agent is
    logged_off. `hook(now, state)` may replace the state between polls (restarts);
    `approvals(now)` are the approved ranges known at `now`."""
    run = Run(state=state or EngineState())
    seen: dict[str, tuple[AgentState, datetime]] = {}
    t = start
    while t <= end:
        obs = []
        for agent, timeline in timelines.items():
            current = AgentState(StateKind.LOGGED_OFF)
            for when, s in timeline:
                if when <= t:
                    current = s
            prev = seen.get(agent)
            if prev is None or prev[0] != current:
                seen[agent] = (current, t)
            obs.append(AgentObservation(agent, f"Agent {agent}", team, current, seen[agent][1]))
        result = evaluate_agents(
            run.state,
            tenant=TENANT,
            now=t,
            agents=obs,
            schedules=schedules,
            ruleset=ruleset,
            approvals=approvals(t) if approvals is not None else None,
        )
        run.transitions.extend(result.transitions)
        run.state = result.state
        if hook is not None:
            run.state = hook(t, run.state)
        t += cadence
    if t - cadence < end:
        run.state, _ = account_until(run.state, now=end, schedules=schedules, ruleset=ruleset)
    return run


def ratios(run: Run, agent: str) -> tuple[float, float]:
    m = run.state.agents[agent]
    return (
        m.adherent_seconds / m.scheduled_seconds,
        m.productive_seconds / m.productive_scheduled_seconds,
    )
