"""The quiet path (its `QuietPath` reused from one evaluation to the next until its horizon)
gives exactly what the full evaluation gives: random schedules and timelines, polled every
5 s, once as the engine runs and once with the quiet path switched off."""

from __future__ import annotations

from unittest import mock

from hypothesis import HealthCheck, given, settings

from monitor.core.snapshots import AgentObservation
from monitor.core.states import AgentState, StateKind
from monitor.engine.engine import EngineState, evaluate_agents, index_schedules
from monitor.engine.model import Segment
from tests.engine.driver import st
from tests.engine.test_properties import CADENCE, WINDOW, Case, at, cases, ruleset

AGENTS = ("1", "2")


def _observations(
    case: Case, t: int, seen: dict[str, tuple[AgentState, int]]
) -> list[AgentObservation]:
    out = []
    for i, agent in enumerate(AGENTS):
        current = AgentState(StateKind.LOGGED_OFF)
        for when, s in case.changes:
            # the second agent lives the same day shifted by a minute: two quiet paths at once
            if when + 60 * i <= t:
                current = st(s)
        prev = seen.get(agent)
        if prev is None or prev[0] != current:
            seen[agent] = (current, t)
        since = at(seen[agent][1])
        out.append(AgentObservation(agent, f"Agent {agent}", "Support", current, since))
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_quiet_path_equals_the_full_evaluation(case: Case) -> None:
    rs = ruleset()
    schedules = index_schedules(
        {a: [Segment(at(s), at(e), a, act) for s, e, act in case.segments] for a in AGENTS}
    )
    carried, fresh = EngineState(), EngineState()
    seen: dict[str, tuple[AgentState, int]] = {}
    reused = 0
    for t in range(0, WINDOW + 1, CADENCE):
        obs = _observations(case, t, seen)
        before = carried.to_dict()
        a = evaluate_agents(carried, tenant="t", now=at(t), agents=obs, schedules=schedules,
                            ruleset=rs)  # fmt: skip
        assert carried.to_dict() == before, "the previous state was modified"
        with mock.patch("monitor.engine.agents._evaluate_quiet_agent", return_value=None):
            b = evaluate_agents(fresh, tenant="t", now=at(t), agents=obs, schedules=schedules,
                                ruleset=rs)  # fmt: skip
        assert a.evaluations == b.evaluations, t
        assert a.accruals == b.accruals, t
        assert a.transitions == b.transitions, t
        assert a.state.to_dict() == b.state.to_dict(), t
        reused += sum(
            1
            for agent, m in a.state.agents.items()
            if m.quiet is not None and agent in carried.agents
            and carried.agents[agent].quiet is m.quiet
        )  # fmt: skip
        carried, fresh = a.state, b.state
    # a 3-hour window of 5-minute-or-longer segments always has stretches of quiet polls
    assert reused > 0
    assert carried.agents["1"].scheduled_seconds == fresh.agents["1"].scheduled_seconds


def test_horizon_is_the_next_boundary() -> None:
    """An agent available all along a phone segment: the cached path ends at the segment's end,
    where the full evaluation takes over and the accrual is split there."""
    rs = ruleset()
    segs = [Segment(at(0), at(600), "1", "phone"), Segment(at(600), at(1200), "1", "break")]
    schedules = index_schedules({"1": segs})
    state = EngineState()
    obs = [AgentObservation("1", "A", "Support", st("available"), at(0))]
    pieces = []
    for t in range(0, 900, CADENCE):
        r = evaluate_agents(state, tenant="t", now=at(t), agents=obs, schedules=schedules,
                            ruleset=rs)  # fmt: skip
        state = r.state
        pieces += [p for acc in r.accruals for p in acc.pieces]
        quiet = state.agents["1"].quiet
        if 0 < t < 600 - CADENCE:
            assert quiet is not None
            assert quiet.horizon == at(600)
    assert [p.start for p in pieces if p.end > at(600) and p.start < at(600)] == []
    assert any(p.end == at(600) for p in pieces)
    m = state.agents["1"]
    assert m.scheduled_seconds == 895.0  # 600 s of phone, 295 s of break
    assert m.adherent_seconds == 600.0  # available fits phone, not a break
