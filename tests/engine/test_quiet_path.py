"""The quiet path (its `QuietPath` reused from one evaluation to the next until its horizon)
gives exactly what the full evaluation gives: random schedules and timelines, polled every
5 s, once as the engine runs and once with the quiet path switched off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from monitor.core.snapshots import AgentObservation
from monitor.core.states import AgentState, StateKind
from monitor.engine.agents import settle_lazy
from monitor.engine.engine import EngineState, evaluate_agents, index_schedules
from monitor.engine.lazy import evaluate_agents_lazily
from monitor.engine.model import Accrual, ApprovedRange, Segment
from monitor.rules.loader import ruleset_from_mapping
from tests.engine.driver import st
from tests.engine.test_properties import CADENCE, RULES, WINDOW, Case, at, cases, ruleset

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


LAZY_RULES = {
    **RULES,
    "team_adherence_below": {"after": "2m", "threshold": 0.9, "window": "10m"},
}
SLOT = 900


def _slots(accruals: Sequence[Accrual], into: dict[tuple[str, int, str], float]) -> None:
    """Seconds per (agent, 15-minute slot, metric): what the adherence history files."""
    for acc in accruals:
        for p in acc.pieces:
            a = p.start
            while a < p.end:
                b = min(p.end, at(0) + timedelta(seconds=((a - at(0)).seconds // SLOT + 1) * SLOT))
                for metric in ("scheduled", "adherent", "productive", "productive_scheduled"):
                    if getattr(p, metric):
                        key = (acc.agent_id, int((a - at(0)).total_seconds()) // SLOT, metric)
                        into[key] = into.get(key, 0.0) + (b - a).total_seconds()
                a = b


def _lazy_observations(
    case: Case, t: int, seen: dict[str, tuple[AgentState, int]], kept: dict[str, AgentObservation]
) -> list[AgentObservation]:
    """As `_observations`, but agent 1's observation is the very same object while it says
    nothing new (as the tracker hands it over); agent 2's is always a new, equal one; and an
    unscheduled agent 3 now and then."""
    out = []
    for fresh in _observations(case, t, seen):
        old = kept.get(fresh.agent_id)
        obs = old if fresh.agent_id == "1" and old == fresh and old is not None else fresh
        kept[obs.agent_id] = obs
        out.append(obs)
    if (t // 700) % 2 == 0:
        # an agent without a schedule, listed only part of the time: unlisted, it stays where
        # it was (and a lazy one must be settled there)
        obs = kept.get("3") or AgentObservation("3", "Agent 3", "Support", st("pause:Break"), at(0))
        kept["3"] = obs
        out.append(obs)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), hs.integers(0, WINDOW // CADENCE), hs.booleans())
def test_lazy_agents_equal_the_eager_engine(case: Case, restart_at: int, approve: bool) -> None:
    """The lazy engine against the eager one with its quiet path off, at every poll: the same
    transitions and evaluations, every agent's memory and totals (derived up to now) equal,
    the team windows equal, the accrued seconds per agent and 15-minute slot equal for every
    slot already closed; once through a save and load of both states (a restart), and with an
    approval over part of the window or none."""
    rs = ruleset_from_mapping(LAZY_RULES, {"admin": {"allowed": ["available"], "neutral": True}})
    schedules = index_schedules(
        {a: [Segment(at(s), at(e), a, act) for s, e, act in case.segments] for a in AGENTS}
    )
    approvals = {"2": [ApprovedRange("2", at(3000), at(4000), "sup")]} if approve else None
    lazy, eager = EngineState(), EngineState()
    seen: dict[str, tuple[AgentState, int]] = {}
    kept: dict[str, AgentObservation] = {}
    lazy_slots: dict[tuple[str, int, str], float] = {}
    eager_slots: dict[tuple[str, int, str], float] = {}
    were_lazy = 0
    for i, t in enumerate(range(0, WINDOW + 1, CADENCE)):
        if i == restart_at:
            lazy = EngineState.from_dict(lazy.to_dict())
            eager = EngineState.from_dict(eager.to_dict())
        obs = _lazy_observations(case, t, seen, kept)
        before = lazy.to_dict()
        a = evaluate_agents_lazily(
            lazy, tenant="t", now=at(t), agents=obs, schedules=schedules, ruleset=rs,
            approvals=approvals,
        )  # fmt: skip
        assert lazy.to_dict() == before, "the previous state was modified"
        with mock.patch("monitor.engine.agents._evaluate_quiet_agent", return_value=None):
            b = evaluate_agents(eager, tenant="t", now=at(t), agents=obs, schedules=schedules,
                                ruleset=rs, approvals=approvals)  # fmt: skip
        assert a.transitions == b.transitions, t
        assert a.evaluations == b.evaluations, t
        assert a.state.totals() == b.state.totals(), t
        settled, _ = settle_lazy(a.state, schedules=schedules, ruleset=rs)
        assert settled.to_dict() == b.state.to_dict(), t
        assert {k: a.state.current(k) for k in a.state.agents} == b.state.agents, t
        _slots(a.accruals, lazy_slots)
        _slots(b.accruals, eager_slots)
        closed = (t // SLOT) * 1  # slots before the one `t` is in are closed
        assert {k: v for k, v in lazy_slots.items() if k[1] < closed} == {
            k: v for k, v in eager_slots.items() if k[1] < closed
        }, t
        were_lazy += len(a.state.lazy)
        lazy, eager = a.state, b.state
    _, rest = settle_lazy(lazy, schedules=schedules, ruleset=rs)
    _slots(rest, lazy_slots)
    assert lazy_slots == eager_slots
    assert were_lazy > 0


def test_an_unlisted_lazy_agent_stays_where_it_was() -> None:
    """A lazy agent that a cycle does not list is settled where the eager engine leaves it,
    also when another lazy agent wakes in the same cycle (they must not be mistaken for one
    another when counting who stayed lazy)."""
    rs = ruleset()
    first = {a: AgentObservation(a, a, "", st("pause:Break"), at(0)) for a in "XYZ"}
    lazy, eager = EngineState(), EngineState()
    for t, listed in ((5, first), (10, first), (15, first), (20, first)):
        changed = dict(listed)
        if t == 20:
            changed["X"] = AgentObservation("X", "X", "", st("wrap_up"), at(18))
            del changed["Y"]
        obs = list(changed.values())
        a = evaluate_agents_lazily(lazy, tenant="t", now=at(t), agents=obs, schedules={},
                                   ruleset=rs)  # fmt: skip
        b = evaluate_agents(eager, tenant="t", now=at(t), agents=obs, schedules={}, ruleset=rs)
        lazy, eager = a.state, b.state
        assert {k: lazy.current(k) for k in lazy.agents} == eager.agents, t
    assert lazy.agents["Y"].accounted_until == at(15)
    assert "Y" not in lazy.lazy
