"""The demo's generated day: its scripted incidents raise exactly the alerts they promise."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from monitor.demo.scenario import DEMO_AFTERS, build_demo, demo_ruleset
from monitor.engine.model import RuleName
from monitor.rules.loader import default_ruleset
from monitor.simulator.replay import run_replay

NOW = datetime(2026, 3, 2, 9, 0, 7, tzinfo=UTC)
CADENCE = timedelta(seconds=5)


async def test_incidents_fire_and_resolve_as_scripted_and_nothing_else_fires() -> None:
    """Replayed from the demo's start with the demo's rules, the first four minutes raise each
    incident's alert at its ideal time (within one poll) and resolve it, and no other alert."""
    centre = build_demo(NOW, 36)
    rules: dict[str, dict[str, object]] = {r: {"after": a} for r, a in DEMO_AFTERS.items()}
    del rules["long_pause"]  # a longer after, not a shorter one: no incident for it
    rules["queue_wait_above"]["threshold"] = 120
    scenario = dataclasses.replace(
        centre.scenario,
        rules=rules,
        start=NOW - timedelta(seconds=1),
        end=NOW + timedelta(minutes=4),
        cadence_user_states=CADENCE,
        cadence_queues=CADENCE,
    )
    result = await run_replay(scenario)
    firing = {(a.rule, a.subject_id): a.at for a in result.alerts if a.status == "firing"}
    resolved = {(a.rule, a.subject_id): a.at for a in result.alerts if a.status == "resolved"}
    expected = {(i.rule, i.subject_id): i for i in centre.incidents}
    # the late log-in is also out of adherence (logged off during phone time)
    extra = {("out_of_adherence", centre.incidents[2].subject_id)}
    assert set(firing) == set(expected) | extra
    for key, incident in expected.items():
        at = firing[key] - NOW
        assert incident.fires_after <= at <= incident.fires_after + CADENCE + timedelta(seconds=1)
        assert incident.resolves_after is not None
        gone = resolved[key] - NOW
        assert incident.resolves_after <= gone <= incident.resolves_after + 2 * CADENCE
    assert min(firing.values()) - NOW < timedelta(seconds=60)


def test_the_day_has_three_teams_shifts_in_progress_breaks_and_calls() -> None:
    """At the start most agents are on shift and logged on, some on a break or at lunch, some
    on calls, and a few shifts begin in the next minutes."""
    sc = build_demo(NOW, 36).scenario
    assert {a.group for a in sc.agents} == {"Support", "Sales", "Billing"}
    kinds: dict[str, int] = {}
    for agent in sc.agents:
        state = [s for t, s in agent.states if t <= NOW][-1:] or None
        label = state[0].label if state else "logged_off"
        kinds[label] = kinds.get(label, 0) + 1
        assert agent.segments, agent.id
    on_break = kinds.get("pause:Break", 0) + kinds.get("pause:Lunch", 0)
    assert on_break >= 3
    assert kinds.get("connected", 0) >= 10
    assert 2 <= kinds.get("logged_off", 0) <= 6
    later = [a for a in sc.agents if a.segments[0].start > NOW]
    assert len(later) >= 3


def test_the_same_instant_gives_the_same_day() -> None:
    """Generation is deterministic."""
    assert build_demo(NOW, 12).scenario.agents == build_demo(NOW, 12).scenario.agents


@pytest.mark.parametrize("agents", [5, 601])
def test_agent_counts_out_of_range_are_refused(agents: int) -> None:
    """Too few agents to play every incident, or absurdly many, is a ValueError naming --agents."""
    with pytest.raises(ValueError, match="--agents"):
        build_demo(NOW, agents)


def test_demo_rules_shorten_only_the_incident_rules() -> None:
    """The demo ruleset shortens `after` for the incident rules, lengthens long_pause past a
    lunch, and keeps every other setting."""
    base = default_ruleset()
    demo = demo_ruleset(base)
    for name, cfg in demo.rules.items():
        if name is RuleName.LONG_PAUSE:
            assert cfg.after > timedelta(minutes=30)  # longer than a lunch
        elif name.value in DEMO_AFTERS:
            assert cfg.after <= timedelta(seconds=45)
            assert cfg.severity == base.rules[name].severity
        else:
            assert cfg == base.rules[name]
