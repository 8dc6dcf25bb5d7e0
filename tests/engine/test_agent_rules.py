"""Agent rules fire and resolve at their ideal times, and adherence is accounted exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.snapshots import AgentObservation
from monitor.engine.engine import EngineState, evaluate_agents
from monitor.engine.model import RuleSet
from monitor.rules.loader import ruleset_from_mapping
from tests.engine.driver import OSLO, TENANT, drive, local, ratios, segments, st

DAY = "2026-03-02"


def rules(**spec: dict[str, object]) -> RuleSet:
    return ruleset_from_mapping(spec)


def worked_example() -> tuple[dict, dict, RuleSet]:
    schedule = {
        "1001": segments(
            "1001",
            DAY,
            [("08:00", "10:00", "phone"), ("10:00", "10:15", "break"), ("10:15", "12:00", "phone")],
        )
    }
    timeline = {
        "1001": [
            (local(DAY, "07:58:40"), st("available")),
            (local(DAY, "10:00:30"), st("pause:Break")),
            (local(DAY, "10:24:00"), st("available")),
            (local(DAY, "12:00:00"), st("logged_off")),
        ]
    }
    ruleset = rules(break_overrun={"after": "2m"}, out_of_adherence={"after": "5m"})
    return timeline, schedule, ruleset


def test_worked_example_alerts_at_contract_times() -> None:
    """The scenario-format worked example fires and resolves at the contract's ideal times."""
    timeline, schedule, ruleset = worked_example()
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "12:30"))
    assert run.ideal("break_overrun") == [("firing", "10:17:30"), ("resolved", "10:24:00")]
    assert run.ideal("out_of_adherence") == [("firing", "10:20:00"), ("resolved", "10:24:00")]
    assert len(run.transitions) == 4
    for t in run.transitions:
        assert t.ideal_at <= t.at <= t.ideal_at + timedelta(seconds=6)
        assert t.subject == "agent"
        assert t.subject_id == "1001"
        assert t.team == "Support"
    first = run.transitions[0]
    assert first.condition_since == local(DAY, "10:15:30")
    assert first.details["name"] == "Agent 1001"
    assert first.details["state"] == "pause:Break"


def test_worked_example_adherence_and_conformance() -> None:
    """Adherence 13830/14400 and conformance 13070/13500, as computed from the timeline."""
    timeline, schedule, ruleset = worked_example()
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "12:30"))
    m = run.state.agents["1001"]
    assert m.scheduled_seconds == pytest.approx(14400)
    assert m.adherent_seconds == pytest.approx(14400 - 570)
    assert m.productive_seconds == pytest.approx(13070)
    assert m.productive_scheduled_seconds == pytest.approx(13500)
    adherence, conformance = ratios(run, "1001")
    assert adherence == pytest.approx(0.9604, abs=0.005)
    assert conformance == pytest.approx(0.9681, abs=0.005)
    assert [a.agent_id for a in run.state.totals()] == ["1001"]


def test_round_trip_mid_incident_neither_refires_nor_loses_resolve() -> None:
    """State serialised to JSON and restored mid-incident continues as if never interrupted."""
    timeline, schedule, ruleset = worked_example()
    start, end = local(DAY, "07:30"), local(DAY, "12:30")
    straight = drive(timeline, schedule, ruleset, start, end)
    restarts: list[datetime] = []

    def restart(now: datetime, state: EngineState) -> EngineState:
        if now in (local(DAY, "10:18:00"), local(DAY, "10:21:00")):
            restarts.append(now)
            restored = EngineState.from_dict(json.loads(json.dumps(state.to_dict())))
            assert restored.to_dict() == state.to_dict()
            return restored
        return state

    resumed = drive(timeline, schedule, ruleset, start, end, hook=restart)
    assert len(restarts) == 2
    assert resumed.alerts() == straight.alerts()
    assert resumed.state.to_dict() == straight.state.to_dict()


def test_firing_alerts_lists_open_alerts_after_restore() -> None:
    """A restored state still knows which alerts are firing (for the pipeline's view)."""
    timeline, schedule, ruleset = worked_example()
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "10:22"))
    restored = EngineState.from_dict(json.loads(json.dumps(run.state.to_dict())))
    firing = restored.firing_alerts()
    assert [(t.rule.value, t.ideal_at) for t in firing] == [
        ("break_overrun", local(DAY, "10:17:30")),
        ("out_of_adherence", local(DAY, "10:20:00")),
    ]
    assert all(t.tenant == TENANT for t in firing)


def test_evaluate_does_not_touch_its_input_state() -> None:
    """evaluate_agents is pure: the state passed in is unchanged afterwards."""
    timeline, schedule, ruleset = worked_example()
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "10:16"))
    before = json.dumps(run.state.to_dict(), sort_keys=True)
    obs = [
        AgentObservation("1001", "Ada", "Support", st("available"), local(DAY, "10:16:05")),
    ]
    result = evaluate_agents(
        run.state,
        tenant=TENANT,
        now=local(DAY, "10:20:05"),
        agents=obs,
        schedules=schedule,
        ruleset=ruleset,
    )
    assert json.dumps(run.state.to_dict(), sort_keys=True) == before
    assert result.state.to_dict() != run.state.to_dict()


def test_agent_who_never_logs_in_gets_one_late_login() -> None:
    """A no-show fires late_login once at shift start + after, and never early_logoff."""
    schedule = {"2002": segments("2002", DAY, [("08:00", "12:00", "phone")])}
    ruleset = rules(late_login={"after": "2m"}, early_logoff={"after": "2m"})
    run = drive({"2002": []}, schedule, ruleset, local(DAY, "07:30"), local(DAY, "12:30"))
    assert run.ideal("late_login") == [("firing", "08:02:00"), ("resolved", "12:00:00")]
    assert run.ideal("early_logoff") == []


def test_scheduled_agent_missing_from_snapshots_is_logged_off() -> None:
    """An agent only in the schedules is treated as logged_off (late_login fires)."""
    schedule = {"2002": segments("2002", DAY, [("08:00", "12:00", "phone")])}
    ruleset = rules(late_login={"after": "2m"})
    run = drive({}, schedule, ruleset, local(DAY, "07:30"), local(DAY, "09:00"))
    assert run.ideal("late_login") == [("firing", "08:02:00")]


def test_late_login_waits_for_first_activity_that_needs_login() -> None:
    """A shift opening with a meeting (logged_off allowed) starts late_login at the phone block."""
    schedule = {
        "3": segments("3", DAY, [("08:00", "08:30", "meeting"), ("08:30", "12:00", "phone")])
    }
    timeline = {"3": [(local(DAY, "08:40"), st("available"))]}
    ruleset = rules(late_login={"after": "2m"}, early_logoff={"after": "0s"})
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "11:00"))
    assert run.ideal("late_login") == [("firing", "08:32:00"), ("resolved", "08:40:00")]
    assert run.ideal("early_logoff") == []


def test_early_logoff_then_shift_end_resolves() -> None:
    """Logging off mid-shift fires early_logoff; it resolves when the shift ends."""
    schedule = {"4": segments("4", DAY, [("08:00", "12:00", "phone")])}
    timeline = {
        "4": [(local(DAY, "07:58"), st("available")), (local(DAY, "11:00"), st("logged_off"))]
    }
    ruleset = rules(late_login={"after": "2m"}, early_logoff={"after": "2m"})
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "12:30"))
    assert run.ideal("early_logoff") == [("firing", "11:02:00"), ("resolved", "12:00:00")]
    assert run.ideal("late_login") == []


def test_split_shift_is_two_shifts() -> None:
    """Logging off at the end of the morning half is not early; being late for the second is."""
    schedule = {"5": segments("5", DAY, [("08:00", "11:00", "phone"), ("14:00", "17:00", "phone")])}
    timeline = {
        "5": [
            (local(DAY, "07:59"), st("available")),
            (local(DAY, "11:00"), st("logged_off")),
            (local(DAY, "14:05"), st("available")),
            (local(DAY, "16:50"), st("logged_off")),
        ]
    }
    ruleset = rules(
        late_login={"after": "2m"},
        early_logoff={"after": "2m"},
        unscheduled_login={"after": "0s"},
    )
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "17:30"))
    assert run.ideal("late_login") == [("firing", "14:02:00"), ("resolved", "14:05:00")]
    assert run.ideal("early_logoff") == [("firing", "16:52:00"), ("resolved", "17:00:00")]
    assert run.ideal("unscheduled_login") == [("firing", "07:59:00"), ("resolved", "08:00:00")]


def test_shift_past_midnight() -> None:
    """A 22:00–06:00 shift is one shift across midnight: logging off at 02:00 is early."""
    schedule = {"6": segments("6", DAY, [("22:00", "06:00", "phone")])}
    next_day = "2026-03-03"
    timeline = {
        "6": [(local(DAY, "21:58"), st("available")), (local(next_day, "02:00"), st("logged_off"))]
    }
    ruleset = rules(late_login={"after": "2m"}, early_logoff={"after": "2m"})
    run = drive(
        timeline,
        schedule,
        ruleset,
        local(DAY, "21:50"),
        local(next_day, "06:10"),
        cadence=timedelta(seconds=15),
    )
    assert run.ideal("early_logoff") == [("firing", "02:02:00"), ("resolved", "06:00:00")]
    assert run.ideal("late_login") == []
    m = run.state.agents["6"]
    assert m.scheduled_seconds == pytest.approx(8 * 3600)
    assert m.adherent_seconds == pytest.approx(4 * 3600)


def test_dst_spring_forward_day() -> None:
    """On Europe/Oslo's 2026-03-29 the 01:00–05:00 shift lasts 3 real hours; times stay exact."""
    day = "2026-03-29"
    schedule = {
        "7": segments(
            "7",
            day,
            [("01:00", "04:00", "phone"), ("04:00", "04:15", "break"), ("04:15", "05:00", "phone")],
        )
    }
    timeline = {
        "7": [
            (local(day, "00:55"), st("available")),
            (local(day, "04:00"), st("pause:Break")),
            (local(day, "04:20"), st("available")),
        ]
    }
    ruleset = rules(break_overrun={"after": "2m"}, out_of_adherence={"after": "1m"})
    run = drive(timeline, schedule, ruleset, local(day, "00:30"), local(day, "05:30"))
    assert run.ideal("break_overrun") == [("firing", "04:17:00"), ("resolved", "04:20:00")]
    assert run.ideal("out_of_adherence") == [("firing", "04:16:00"), ("resolved", "04:20:00")]
    assert run.transitions[0].ideal_at.astimezone(OSLO).utcoffset() == timedelta(hours=2)
    m = run.state.agents["7"]
    assert m.scheduled_seconds == pytest.approx(3 * 3600)
    assert m.adherent_seconds == pytest.approx(3 * 3600 - 300)


def test_long_wrap_up_and_long_pause() -> None:
    """long_wrap_up follows wrap_up; long_pause treats a type change as one continuous pause."""
    schedule = {"8": segments("8", DAY, [("08:00", "12:00", "phone")])}
    timeline = {
        "8": [
            (local(DAY, "08:00"), st("available")),
            (local(DAY, "08:10"), st("wrap_up")),
            (local(DAY, "08:14"), st("available")),
            (local(DAY, "09:00"), st("pause:Break")),
            (local(DAY, "09:10"), st("pause:Coaching")),
            (local(DAY, "09:25"), st("available")),
        ]
    }
    ruleset = rules(long_wrap_up={"after": "3m"}, long_pause={"after": "20m"})
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "10:00"))
    assert run.ideal("long_wrap_up") == [("firing", "08:13:00"), ("resolved", "08:14:00")]
    assert run.ideal("long_pause") == [("firing", "09:20:00"), ("resolved", "09:25:00")]


def test_long_pause_with_type_follows_that_type_alone() -> None:
    """long_pause with pause_type counts from when that type began, not the whole pause."""
    schedule = {"8": segments("8", DAY, [("08:00", "12:00", "phone")])}
    timeline = {
        "8": [
            (local(DAY, "09:00"), st("pause:Break")),
            (local(DAY, "09:10"), st("pause:Coaching")),
            (local(DAY, "09:40"), st("pause:Break")),
            (local(DAY, "09:45"), st("available")),
        ]
    }
    ruleset = rules(long_pause={"after": "20m", "pause_type": "Coaching"})
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "10:00"))
    assert run.ideal("long_pause") == [("firing", "09:30:00"), ("resolved", "09:40:00")]


def test_break_overrun_against_back_to_back_break_and_lunch() -> None:
    """A break followed directly by lunch is one 45-minute block for break_overrun."""
    schedule = {
        "9": segments(
            "9",
            DAY,
            [
                ("08:00", "11:00", "phone"),
                ("11:00", "11:15", "break"),
                ("11:15", "11:45", "lunch"),
                ("11:45", "15:00", "phone"),
            ],
        )
    }
    timeline = {
        "9": [
            (local(DAY, "08:00"), st("available")),
            (local(DAY, "11:00"), st("pause:Break")),
            (local(DAY, "11:15"), st("pause:Lunch")),
            (local(DAY, "11:50"), st("available")),
        ]
    }
    ruleset = rules(break_overrun={"after": "2m"})
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "12:30"))
    assert run.ideal("break_overrun") == [("firing", "11:47:00"), ("resolved", "11:50:00")]


def test_unscheduled_unmapped_and_unknown_agent() -> None:
    """Data-quality rules: unscheduled login, an unmapped status and an agent with no schedule."""
    schedule = {"10": segments("10", DAY, [("08:00", "09:00", "phone")])}
    timeline = {
        "10": [
            (local(DAY, "09:00"), st("available")),
            (local(DAY, "09:30"), st("unknown")),
            (local(DAY, "09:40"), st("logged_off")),
        ],
        "11": [(local(DAY, "08:00"), st("available")), (local(DAY, "08:30"), st("logged_off"))],
    }
    ruleset = rules(
        unscheduled_login={"after": "10m"},
        unmapped_state={"after": "1m"},
        unknown_agent={"after": "5m"},
    )
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "10:00"))
    assert run.ideal("unscheduled_login") == [("firing", "09:10:00"), ("resolved", "09:40:00")]
    assert run.ideal("unmapped_state") == [("firing", "09:31:00"), ("resolved", "09:40:00")]
    assert run.ideal("unknown_agent") == [("firing", "08:05:00"), ("resolved", "08:30:00")]
    assert {t.subject_id for t in run.transitions if t.rule.value == "unknown_agent"} == {"11"}


def test_condition_that_stops_and_starts_again_is_a_new_alert() -> None:
    """Two separate out-of-adherence episodes give two alerts."""
    schedule = {"12": segments("12", DAY, [("08:00", "12:00", "phone")])}
    timeline = {
        "12": [
            (local(DAY, "08:00"), st("available")),
            (local(DAY, "09:00"), st("pause:Break")),
            (local(DAY, "09:05"), st("available")),
            (local(DAY, "10:00"), st("pause:Break")),
            (local(DAY, "10:02"), st("available")),
        ]
    }
    ruleset = rules(out_of_adherence={"after": "1m"})
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "12:30"))
    assert run.ideal("out_of_adherence") == [
        ("firing", "09:01:00"),
        ("resolved", "09:05:00"),
        ("firing", "10:01:00"),
        ("resolved", "10:02:00"),
    ]


def test_neutral_activity_counts_neither_way() -> None:
    """Time in a neutral activity adds nothing to scheduled or adherent seconds."""
    schedule = {
        "13": segments("13", DAY, [("08:00", "09:00", "phone"), ("09:00", "10:00", "admin")])
    }
    ruleset = ruleset_from_mapping(
        {"out_of_adherence": {"after": "0s"}},
        {"admin": {"allowed": ["available"], "neutral": True}},
    )
    timeline = {"13": [(local(DAY, "08:00"), st("available")), (local(DAY, "09:00"), st("pause"))]}
    run = drive(timeline, schedule, ruleset, local(DAY, "08:00"), local(DAY, "10:00"))
    assert run.ideal("out_of_adherence") == []
    m = run.state.agents["13"]
    assert m.scheduled_seconds == pytest.approx(3600)
    assert m.adherent_seconds == pytest.approx(3600)


def test_evaluation_reports_activity_and_adherence_flag() -> None:
    """Each evaluation says what is scheduled now and whether the agent adheres, and since when."""
    timeline, schedule, ruleset = worked_example()
    run = drive(timeline, schedule, ruleset, local(DAY, "07:30"), local(DAY, "10:15:30"))
    obs = [AgentObservation("1001", "Ada", "Support", st("pause:Break"), local(DAY, "10:00:30"))]
    result = evaluate_agents(
        run.state,
        tenant=TENANT,
        now=local(DAY, "10:15:35"),
        agents=obs,
        schedules=schedule,
        ruleset=ruleset,
    )
    (ev,) = result.evaluations
    assert ev.activity == "phone"
    assert ev.adherent is False
    assert ev.adherent_since == local(DAY, "10:15:00")
    assert ev.state_since == local(DAY, "10:00:30")
    assert result.accruals[0].scheduled_seconds == pytest.approx(5)
    assert result.accruals[0].adherent_seconds == pytest.approx(0)


def test_naive_now_is_rejected() -> None:
    """The engine refuses naive datetimes instead of guessing a zone."""
    with pytest.raises(ValueError, match="naive"):
        evaluate_agents(
            EngineState(),
            tenant=TENANT,
            now=datetime(2026, 3, 2, 8, 0),
            agents=[],
            schedules={},
            ruleset=rules(),
        )


def test_transitions_sorted_by_ideal_time() -> None:
    """Transitions of one evaluation come out ordered by ideal time, then rule."""
    schedule = {a: segments(a, DAY, [("08:00", "12:00", "phone")]) for a in ("b", "a")}
    ruleset = rules(late_login={"after": "0s"}, out_of_adherence={"after": "0s"})
    obs = [AgentObservation(a, a, "T", st("logged_off"), local(DAY, "07:00")) for a in ("b", "a")]
    result = evaluate_agents(
        EngineState(),
        tenant=TENANT,
        now=local(DAY, "08:30"),
        agents=obs,
        schedules=schedule,
        ruleset=ruleset,
    )
    keys = [(t.ideal_at, t.rule.value, t.subject_id) for t in result.transitions]
    assert keys == sorted(keys)
    assert len(keys) == 4
    assert all(t.ideal_at == local(DAY, "08:00") for t in result.transitions)
    assert result.transitions[0].at == local(DAY, "08:30").astimezone(UTC)


def test_alert_says_when_the_entry_time_is_only_first_seen() -> None:
    """An agent already paused when the monitor first saw it: its long_pause alert says the
    entry is only `first_seen` (held at least this long); a pause seen to begin does not."""
    ruleset = rules(long_pause={"after": "10m"})
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    paused = st("pause:Lunch")
    first = AgentObservation("1", "A", "T", paused, t0, first_seen=True)
    observed = AgentObservation("2", "B", "T", paused, t0, first_seen=False)
    state = EngineState(tenant=TENANT)
    fired = []
    for minutes in (0, 5, 11):
        result = evaluate_agents(
            state,
            tenant=TENANT,
            now=t0 + timedelta(minutes=minutes),
            agents=[first, observed],
            schedules={},
            ruleset=ruleset,
        )
        state = result.state
        fired += [t for t in result.transitions if t.status == "firing"]
    by_agent = {t.subject_id: t.details for t in fired}
    assert by_agent["1"]["entry"] == "first_seen"
    assert "entry" not in by_agent["2"]
