"""Queue, team and data-freshness rules, and the replay helper next_due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.core.snapshots import QueueObservation
from monitor.engine.engine import EngineState, evaluate_queues, evaluate_staleness, next_due
from monitor.engine.model import Segment
from monitor.rules.loader import ruleset_from_mapping
from tests.engine.driver import drive, st

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_queue_rules_fire_after_and_resolve_when_clear() -> None:
    """queue_sla_below / queue_wait_above / queue_no_agents_ready follow the polled values."""
    rs = ruleset_from_mapping(
        {
            "queue_sla_below": {"after": "1m", "threshold": 80},
            "queue_wait_above": {"after": "30s", "threshold": 120},
            "queue_no_agents_ready": {"after": "0s"},
        }
    )
    bad = QueueObservation(
        "4101",
        "Support NO",
        queue_size=7,
        agents_ready=0,
        wait_time_max_seconds=140,
        sla_percent=71,
    )
    good = QueueObservation("4101", "Support NO", queue_size=0, agents_ready=3, sla_percent=95)
    timeline = [(0, good), (15, bad), (30, bad), (45, bad), (60, bad), (75, bad), (90, good)]
    state = EngineState()
    out = []
    for sec, q in timeline:
        result = evaluate_queues(state, tenant="t", now=s(sec), queues=[q], ruleset=rs)
        state = result.state
        out += [
            (t.rule.value, t.status, (t.ideal_at - T0).total_seconds()) for t in result.transitions
        ]
    assert out == [
        ("queue_no_agents_ready", "firing", 15),
        ("queue_wait_above", "firing", 45),
        ("queue_sla_below", "firing", 75),
        ("queue_no_agents_ready", "resolved", 90),
        ("queue_sla_below", "resolved", 90),
        ("queue_wait_above", "resolved", 90),
    ]
    assert state.queues["4101"].open == {}


def test_stale_data_fires_after_silence_and_resolves_at_next_success() -> None:
    """stale_data counts from the last success and resolves at the next one."""
    rs = ruleset_from_mapping({"stale_data": {"after": "1m"}})
    state = EngineState()
    seen = []
    for sec, last in [(30, 0), (59, 0), (60, 0), (90, 0), (95, 92), (200, 195)]:
        r = evaluate_staleness(
            state, tenant="t", now=s(sec), last_success={"users": s(last)}, ruleset=rs
        )
        state = r.state
        seen += [
            (t.status, (t.ideal_at - T0).total_seconds(), (t.at - T0).total_seconds())
            for t in r.transitions
        ]
    assert seen == [("firing", 60, 60), ("resolved", 92, 95)]


def test_team_adherence_below_over_trailing_window() -> None:
    """A team whose agents are all out of adherence trips team_adherence_below after `after`."""
    segs = {a: [Segment(s(0), s(7200), a, "phone")] for a in ("1", "2")}
    timelines = {
        "1": [(s(0), st("available")), (s(600), st("pause:Break"))],
        "2": [(s(0), st("available")), (s(600), st("pause:Break"))],
    }
    rs = ruleset_from_mapping(
        {"team_adherence_below": {"after": "5m", "threshold": 0.85, "window": "10m"}}
    )
    run = drive(timelines, segs, rs, s(0), s(3600), cadence=timedelta(seconds=15))
    team = [t for t in run.transitions if t.rule.value == "team_adherence_below"]
    assert [t.status for t in team] == ["firing"]
    assert team[0].subject == "team"
    assert team[0].subject_id == "Support"
    # adherence drops below 0.85 once >15 % of the 10-minute window is paused: about 1.5 min in
    assert s(600 + 60) <= team[0].condition_since <= s(600 + 180)
    assert team[0].ideal_at == team[0].condition_since + timedelta(minutes=5)


def test_next_due_reports_pending_deadline_and_boundary() -> None:
    """next_due gives the next firing deadline or schedule boundary, whichever is first."""
    segs = {"1": [Segment(s(0), s(3600), "1", "phone"), Segment(s(3600), s(4500), "1", "break")]}
    rs = ruleset_from_mapping({"out_of_adherence": {"after": "5m"}})
    paused = [(s(0), st("available")), (s(100), st("pause:Break"))]
    run = drive({"1": paused}, segs, rs, s(0), s(100))
    assert next_due(run.state, now=s(100), schedules=segs, ruleset=rs) == s(400)
    run = drive({"1": [(s(0), st("available"))]}, segs, rs, s(0), s(100))
    assert next_due(run.state, now=s(100), schedules=segs, ruleset=rs) == s(3600)
