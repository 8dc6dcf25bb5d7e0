"""State-entry times from poll-to-poll transitions and per-user corrections."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.states import AgentState, StateKind
from monitor.ingest.tracker import AgentRow, GroupPoll, StateTracker

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
AVAILABLE = AgentState(StateKind.AVAILABLE)
BUSY = AgentState(StateKind.BUSY)
BREAK = AgentState(StateKind.PAUSE, "Break")
LUNCH = AgentState(StateKind.PAUSE, "Lunch")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def row(
    agent: str,
    state: AgentState,
    team: str = "Support",
    status_duration_seconds: float | None = None,
) -> AgentRow:
    return AgentRow(
        agent, f"Agent {agent}", team, state, status_duration_seconds=status_duration_seconds
    )


def since_of(tracker: StateTracker, agent: str) -> tuple[datetime, bool]:
    obs = tracker.get(agent)
    assert obs is not None, f"agent {agent} is not tracked"
    return obs.since, obs.since_exact


def poll(t: float, *rows: AgentRow, team: str = "Support") -> GroupPoll:
    return GroupPoll(team, at(t), list(rows))


def test_first_sight_and_transitions_use_the_poll_time() -> None:
    """A new agent or a new state gets since = the poll that first saw it, inexact."""
    tracker = StateTracker("t1")
    first = tracker.observe_cycle([poll(0, row("1", AVAILABLE))])
    assert first.changed == ("1",)
    assert first.appeared == ("1",)
    obs = tracker.get("1")
    assert obs is not None
    assert (obs.since, obs.since_exact) == (at(0), False)

    same = tracker.observe_cycle([poll(5, row("1", AVAILABLE))])
    assert same.changed == ()
    assert since_of(tracker, "1")[0] == at(0)

    moved = tracker.observe_cycle([poll(10, row("1", BUSY))])
    assert moved.changed == ("1",)
    assert since_of(tracker, "1")[0] == at(10)


def test_pause_type_change_is_a_transition() -> None:
    """Going from one pause type to another restarts the clock."""
    tracker = StateTracker("t1")
    tracker.observe_cycle([poll(0, row("1", BREAK))])
    result = tracker.observe_cycle([poll(5, row("1", LUNCH))])
    assert result.changed == ("1",)
    assert since_of(tracker, "1")[0] == at(5)


def test_per_user_duration_makes_since_exact_and_it_is_kept() -> None:
    """A per-user status duration sets an exact since, kept while the state is unchanged."""
    tracker = StateTracker("t1")
    tracker.observe_cycle([poll(100, row("1", BREAK))])
    assert tracker.correct("1", AgentState(StateKind.PAUSE), 42.0, at(101)) is True
    obs = tracker.get("1")
    assert obs is not None
    assert (obs.since, obs.since_exact) == (at(59), True)
    snap = tracker.observe_cycle([poll(105, row("1", BREAK))]).snapshots[0]
    assert (snap.agents[0].since, snap.agents[0].since_exact) == (at(59), True)
    tracker.observe_cycle([poll(110, row("1", AVAILABLE))])
    assert since_of(tracker, "1") == (at(110), False)


def test_correction_for_another_state_or_unknown_agent_is_ignored() -> None:
    """A per-user answer showing a different state (changed since) does not move since."""
    tracker = StateTracker("t1")
    tracker.observe_cycle([poll(0, row("1", AVAILABLE))])
    assert tracker.correct("1", BUSY, 3.0, at(1)) is False
    assert tracker.correct("2", AVAILABLE, 3.0, at(1)) is False
    assert since_of(tracker, "1")[0] == at(0)


def test_row_with_its_own_duration_is_exact() -> None:
    """A group row that carries statusDurationSeconds is exact at once."""
    tracker = StateTracker("t1")
    tracker.observe_cycle([poll(50, row("1", BUSY, status_duration_seconds=20.0))])
    obs = tracker.get("1")
    assert obs is not None
    assert (obs.since, obs.since_exact) == (at(30), True)


def test_agents_disappear_only_from_groups_that_answered() -> None:
    """An agent missing from its group's answer is dropped; agents of groups that did not answer
    this cycle are kept."""
    tracker = StateTracker("t1")
    tracker.observe_cycle(
        [
            poll(0, row("1", AVAILABLE), row("2", BUSY)),
            poll(0, row("3", AVAILABLE, team="Sales"), team="Sales"),
        ]
    )
    result = tracker.observe_cycle([poll(5, row("1", AVAILABLE))])  # Sales failed this cycle
    assert result.disappeared == ("2",)
    assert tracker.get("2") is None
    assert tracker.get("3") is not None
    assert [a.agent_id for a in result.snapshots[0].agents] == ["1"]


def test_agent_moving_between_groups_keeps_since() -> None:
    """An agent who shows up in another group in the same state keeps the entry time."""
    tracker = StateTracker("t1")
    tracker.observe_cycle([poll(0, row("1", AVAILABLE)), poll(0, team="Sales")])
    tracker.observe_cycle([poll(5), poll(5, row("1", AVAILABLE, team="Sales"), team="Sales")])
    obs = tracker.get("1")
    assert obs is not None
    assert (obs.team, obs.since) == ("Sales", at(0))


def test_export_import_round_trip_through_json() -> None:
    """State exported to JSON and imported into a fresh tracker keeps the entry times."""
    tracker = StateTracker("t1")
    tracker.observe_cycle([poll(0, row("1", BREAK), row("2", AVAILABLE))])
    tracker.correct("1", BREAK, 30.0, at(1))
    data = json.loads(json.dumps(tracker.export_state()))
    fresh = StateTracker("t1")
    fresh.import_state(data)
    assert fresh.agents() == tracker.agents()
    fresh.observe_cycle([poll(60, row("1", BREAK), row("2", AVAILABLE))])
    assert since_of(fresh, "1") == (at(-29), True)
    assert since_of(fresh, "2")[0] == at(0)


def test_import_rejects_foreign_or_bad_state() -> None:
    """State of another tenant or a malformed dict is refused with ValueError."""
    tracker = StateTracker("t1")
    tracker.observe_cycle([poll(0, row("1", AVAILABLE))])
    with pytest.raises(ValueError, match="tenant"):
        StateTracker("t2").import_state(tracker.export_state())
    bad = tracker.export_state()
    bad["agents"]["1"]["since"] = "not a time"
    with pytest.raises(ValueError, match="malformed"):
        StateTracker("t1").import_state(bad)


def test_an_unchanged_row_keeps_the_observation_and_a_changed_one_replaces_it() -> None:
    """Most agents in most cycles: the same row gives the same observation object (no copy);
    a new call count or name gives a new one that keeps `since`."""
    tracker = StateTracker("t1")
    tracker.observe_cycle([poll(0, row("1", AVAILABLE))])
    first = tracker.get("1")
    tracker.observe_cycle([poll(5, row("1", AVAILABLE))])
    assert tracker.get("1") is first
    busy = AgentRow("1", "Agent 1", "Support", AVAILABLE, calls_offered=1, calls_answered=1)
    tracker.observe_cycle([poll(10, busy)])
    later = tracker.get("1")
    assert later is not first
    assert later is not None
    assert (later.since, later.calls_offered, later.calls_answered) == (at(0), 1, 1)
    renamed = AgentRow("1", "Agent One", "Support", AVAILABLE, calls_offered=1, calls_answered=1)
    tracker.observe_cycle([poll(15, renamed)])
    obs = tracker.get("1")
    assert obs is not None
    assert (obs.name, obs.since) == ("Agent One", at(0))
