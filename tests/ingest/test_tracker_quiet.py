"""The tracker folds only the rows that are not the very objects of the previous cycle (and the
agents name_pause renamed): it must end up exactly where folding every row ends up, through
any cycles, and keep the very same observation (and team tuple) for an unchanged agent."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from monitor.core.states import AgentState, StateKind
from monitor.ingest.tracker import AgentRow, GroupPoll, StateTracker

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
STATES = [
    AgentState(StateKind.AVAILABLE),
    AgentState(StateKind.BUSY),
    AgentState(StateKind.PAUSE, "Break"),
    AgentState(StateKind.PAUSE, None),
    AgentState(StateKind.LOGGED_OFF),
]
TEAMS = ["A", "B", "C"]


class Counting(StateTracker):
    """The tracker as it is, counting the cycles that folded only the changed rows."""

    quiet_cycles = 0

    def _fold_changed(self, polls: list[GroupPoll], todo: list[list[int]]) -> list[str]:
        self.quiet_cycles += 1
        return super()._fold_changed(polls, todo)


class EveryRow(StateTracker):
    """The reference: every row folded every cycle."""

    def _changed_rows(self, polls: list[GroupPoll]) -> None:
        return None


def _new_row(rng: random.Random, agent: str, team: str) -> AgentRow:
    return AgentRow(
        agent,
        rng.choice(["Ada", "Bo"]),
        team,
        rng.choice(STATES),
        calls_offered=rng.randint(0, 2),
        status_duration_seconds=rng.choice([None] * 150 + [12.0]),
    )


def _next_rows(rng: random.Random, rows: dict[str, list[AgentRow]]) -> None:
    """Most rows stay the very same objects; some are new (changed or equal), some agents
    move, leave or come, rarely one is listed by two teams."""
    for team, team_rows in rows.items():
        for i, r in enumerate(team_rows):
            if rng.random() < 0.1:
                team_rows[i] = _new_row(rng, r.agent_id, team)
            elif rng.random() < 0.03:  # equal, but another object
                team_rows[i] = AgentRow(r.agent_id, r.name, r.team, r.state, r.calls_offered)
            elif rng.random() < 0.01:  # another agent in its place (the same length)
                team_rows[i] = _new_row(rng, str(rng.randint(0, 400)), team)
            elif rng.random() < 0.01:  # a row naming another team than its poll's
                team_rows[i] = _new_row(rng, r.agent_id, rng.choice([*TEAMS, "Z"]))
        if team_rows and rng.random() < 0.03:
            team_rows.pop(rng.randrange(len(team_rows)))
        if rng.random() < 0.03:
            agent = str(rng.randint(0, 400))
            team_rows.insert(rng.randint(0, len(team_rows)), _new_row(rng, agent, team))


def test_folding_changed_rows_equals_folding_every_row() -> None:
    rng = random.Random(1606)
    fast, ref = Counting("t"), EveryRow("t")
    rows = {t: [_new_row(rng, f"{t}{i}", t) for i in range(12)] for t in TEAMS}
    before: dict[str, AgentRow] = {}
    kept = 0
    for cycle in range(300):
        at = T0 + timedelta(seconds=5 * cycle)
        if cycle:
            _next_rows(rng, rows)
        answered = [t for t in TEAMS if rng.random() > 0.02]  # a team may fail a cycle
        polls = [GroupPoll(t, at, list(rows[t])) for t in answered]
        previous = {o.agent_id: o for o in fast.agents()}
        got, want = fast.observe_cycle(polls), ref.observe_cycle(polls)
        assert got == want
        assert fast.agents() == ref.agents()  # the same observations, in the same order
        assert fast.teams() == {o.team for o in fast.agents()}
        touched: set[str] = set()
        for tracker in (fast, ref):  # per-user answers between cycles
            r = random.Random(cycle)
            for o in r.sample(tracker.agents(), min(3, len(tracker))):
                if r.random() < 0.5:
                    tracker.correct(o.agent_id, o.state, r.choice([3.0, 40.0]), at)
                else:
                    tracker.name_pause(o.agent_id, r.choice(["Lunch", "Break"]), at)
                touched.add(o.agent_id)
        for t in answered:
            assert fast.snapshot(t, at) == ref.snapshot(t, at)
        same = [
            r.agent_id
            for p in polls
            for r in p.rows
            if before.get(r.agent_id) is r and r.status_duration_seconds is None
        ]
        for agent in same:
            obs = previous.get(agent)
            if obs is not None and agent in got.changed:
                continue
            if obs is not None and fast.get(agent) is obs:
                kept += 1
        before = {r.agent_id: r for p in polls for r in p.rows}
        # what the next cycle may not know: who was corrected or renamed in between
        before = {a: r for a, r in before.items() if a not in touched}
    assert kept > 3000  # most agents keep their very observation from cycle to cycle
    assert fast.quiet_cycles > 40  # (58 of 300 with this seed: the others folded every row)


def test_unchanged_rows_keep_the_observation_and_the_team_tuple() -> None:
    tracker = StateTracker("t")
    a = [AgentRow(str(i), "Ada", "A", STATES[0]) for i in range(5)]
    b = [AgentRow(str(i), "Bo", "B", STATES[1]) for i in range(5, 8)]
    tracker.observe_cycle([GroupPoll("A", T0, list(a)), GroupPoll("B", T0, list(b))])
    first_a, first_b = tracker.snapshot("A", T0), tracker.snapshot("B", T0)
    a[2] = AgentRow("2", "Ada", "A", STATES[1])  # one agent of A changes state
    later = T0 + timedelta(seconds=5)
    result = tracker.observe_cycle([GroupPoll("A", later, list(a)), GroupPoll("B", later, b)])
    assert result.changed == ("2",)
    snap_a, snap_b = result.snapshots
    assert [x is y for x, y in zip(first_a.agents, snap_a.agents, strict=True)] == [
        True, True, False, True, True,
    ]  # fmt: skip
    assert snap_b.agents is first_b.agents  # a team without a change: the very same tuple
    assert snap_a.agents[2].since == later
    # renamed by a per-user call: the row (an untyped pause) no longer says its state
    tracker.observe_cycle([GroupPoll("A", later, list(a)), GroupPoll("B", later, b)])
    assert tracker.name_pause("2", "Lunch", later) is False  # not paused: nothing to name
    a[3] = AgentRow("3", "Ada", "A", AgentState(StateKind.PAUSE, None))
    tracker.observe_cycle([GroupPoll("A", later, list(a)), GroupPoll("B", later, b)])
    assert tracker.name_pause("3", "Lunch", later)
    again = tracker.observe_cycle([GroupPoll("A", later, list(a)), GroupPoll("B", later, b)])
    obs = tracker.get("3")
    assert obs is not None
    # the same row object, but it no longer says the agent's state: folded again, as folding
    # every row does (the pollers carry the type over into such rows; the tracker does not)
    assert obs.state == AgentState(StateKind.PAUSE, None)
    assert again.changed == ("3",)
