"""Scenario files: the contract of ../shared/scenario-format.md, parsed as written."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.core.states import LOGGED_OFF, AgentState, StateKind
from monitor.engine.model import Segment
from monitor.simulator.scenario import ScenarioError, load_scenario, parse_scenario

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def scenario_text(agents: str = "", extra: str = "", start: str = "2026-03-02T07:30:00") -> str:
    head = f"""\
        name: test
        tenant:
          customer_key: 12345
          timezone: Europe/Oslo
        start: {start}
        end: 2026-03-02T23:00:00
        rules:
          out_of_adherence: {{after: 5m}}
        """
    return textwrap.dedent(head) + textwrap.dedent(agents) + textwrap.dedent(extra)


def line_of(text: str, needle: str) -> int:
    """The 1-based line number of the first line containing `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def one_agent(schedule: str = "", states: str = "") -> str:
    return f"""\
agents:
  - id: 1001
    name: Ada Nilsen
    group: Support
    schedule:
{schedule}
    states:
{states}
"""


def test_example_scenario_loads_with_times_as_written() -> None:
    """The contract's example parses: unquoted 10:00 is ten o'clock local, not 600."""
    sc = load_scenario(SCENARIOS / "break_overrun.yaml")
    assert sc.name == "Break overrun after a late return"
    assert sc.customer_key == "12345"
    assert sc.timezone.key == "Europe/Oslo"
    assert sc.start == utc(2026, 3, 2, 6, 30)  # 07:30 CET
    assert sc.end == utc(2026, 3, 2, 11, 30)
    assert sc.cadence_user_states == timedelta(seconds=5)
    assert sc.cadence_queues == timedelta(seconds=15)
    assert sc.rules == {"break_overrun": {"after": "2m"}, "out_of_adherence": {"after": "5m"}}
    assert sc.activities == {"coaching": {"allowed": ["pause:Coaching", "logged_off"]}}
    (agent,) = sc.agents
    assert (agent.id, agent.name, agent.group) == ("1001", "Ada Nilsen", "Support")
    assert agent.segments == (
        Segment(utc(2026, 3, 2, 7), utc(2026, 3, 2, 9), "1001", "phone"),
        Segment(utc(2026, 3, 2, 9), utc(2026, 3, 2, 9, 15), "1001", "break"),
        Segment(utc(2026, 3, 2, 9, 15), utc(2026, 3, 2, 11), "1001", "phone"),
    )
    assert agent.states[1] == (utc(2026, 3, 2, 9, 0, 30), AgentState(StateKind.PAUSE, "Break"))
    assert sc.expect is not None
    first = sc.expect.alerts[0]
    assert (first.rule, first.agent, first.queue) == ("break_overrun", "1001", None)
    assert (first.at, first.resolved) == (utc(2026, 3, 2, 9, 17, 30), utc(2026, 3, 2, 9, 24))
    assert sc.expect.adherence["1001"].adherence == 0.9604
    assert sc.expect.adherence["1001"].conformance == 0.9681


def test_state_at_and_since_follow_the_script() -> None:
    """state_at/state_since: logged_off since start before the first state, then as scripted."""
    sc = load_scenario(SCENARIOS / "break_overrun.yaml")
    assert sc.state_at("1001", utc(2026, 3, 2, 6, 50)) == LOGGED_OFF
    assert sc.state_since("1001", utc(2026, 3, 2, 6, 50)) == sc.start
    assert sc.state_at("1001", utc(2026, 3, 2, 9, 10)) == AgentState(StateKind.PAUSE, "Break")
    assert sc.state_since("1001", utc(2026, 3, 2, 9, 10)) == utc(2026, 3, 2, 9, 0, 30)
    assert sc.state_at("1001", utc(2026, 3, 2, 9, 24)).kind is StateKind.AVAILABLE
    assert sc.state_at("1001", utc(2026, 3, 2, 11, 30)) == LOGGED_OFF


def test_repeated_state_continues_the_earlier_one() -> None:
    """Two consecutive identical states are one stay: since is the first one's time."""
    text = scenario_text(
        one_agent(
            "      - [08:00, 12:00, phone]",
            "      - [08:00, available]\n      - [09:00, available]",
        )
    )
    sc = parse_scenario(text, "rep.yaml")
    assert sc.state_since("1001", utc(2026, 3, 2, 8, 30)) == utc(2026, 3, 2, 7)


def test_queue_fields_keep_last_value_and_defaults() -> None:
    """Queue fields keep their last value; never-given fields read 0, sla reads 100."""
    sc = load_scenario(SCENARIOS / "break_overrun.yaml")
    before = sc.queue_fields_at("4101", utc(2026, 3, 2, 6, 45))
    assert before["sla"] == 100.0
    assert before["queueSize"] == 0.0
    at_nine = sc.queue_fields_at("4101", utc(2026, 3, 2, 8))
    assert (at_nine["queueSize"], at_nine["agentsReady"], at_nine["sla"]) == (0, 3, 95)
    assert at_nine["waitTimeMaxSeconds"] == 0
    later = sc.queue_fields_at("4101", utc(2026, 3, 2, 10))
    assert (later["queueSize"], later["waitTimeMaxSeconds"], later["sla"]) == (7, 140, 71)
    assert later["callsOfferedToday"] == 0


def test_unquoted_sexagesimal_times_and_dates_stay_text_but_numbers_stay_numbers() -> None:
    """10:00:30 and 2026-03-02T07:30 are times; true/null/42/0.5 keep their YAML meaning."""
    text = scenario_text(
        one_agent("      - [10:00, 11:00, phone]", "      - [10:00:30, available]"),
        "misc: {flag: true, none: null, n: 42, f: 0.5, when: 2026-03-02T07:30:00, hex: 0x10}\n",
    )
    sc = parse_scenario(text, "t.yaml")
    assert sc.agents[0].segments[0].start == utc(2026, 3, 2, 9)
    assert sc.agents[0].states[0][0] == utc(2026, 3, 2, 9, 0, 30)
    assert sc.extra["misc"] == {
        "flag": True,
        "none": None,
        "n": 42,
        "f": 0.5,
        "when": "2026-03-02T07:30:00",
        "hex": 16,
    }


def test_segment_past_midnight_ends_next_day() -> None:
    """A segment whose end is earlier than its start runs past midnight."""
    text = scenario_text(one_agent("      - [22:00, 02:00, phone]", "      - [22:00, available]"))
    seg = parse_scenario(text, "night.yaml").agents[0].segments[0]
    assert seg.start == utc(2026, 3, 2, 21)
    assert seg.end == utc(2026, 3, 3, 1)


def test_end_of_day_written_as_24_00() -> None:
    """`24:00` ends a segment at the following midnight."""
    text = scenario_text(one_agent("      - [22:00, 24:00, phone]", "      - [22:00, available]"))
    seg = parse_scenario(text, "eod.yaml").agents[0].segments[0]
    assert seg.end == utc(2026, 3, 2, 23)


def test_full_date_time_for_a_later_day() -> None:
    """A later date is written as a full local date-time."""
    text = scenario_text(
        one_agent(
            "      - [2026-03-03T08:00, 2026-03-03T09:00:00, phone]",
            "      - [2026-03-03T07:59, available]",
        )
    )
    agent = parse_scenario(text, "later.yaml").agents[0]
    assert agent.segments[0].start == utc(2026, 3, 3, 7)
    assert agent.states[0][0] == utc(2026, 3, 3, 6, 59)


def test_nonexistent_local_time_is_an_error() -> None:
    """02:30 on the spring-forward night does not exist in Europe/Oslo: error with line."""
    text = scenario_text(
        one_agent(
            "      - [2026-03-29T02:30, 2026-03-29T04:00, phone]", "      - [08:00, available]"
        )
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "dst.yaml")
    msg = str(info.value)
    assert "dst.yaml:" in msg
    assert "agents[0].schedule[0][0]" in msg
    assert "does not exist" in msg
    assert info.value.line == line_of(text, "2026-03-29T02:30")


def test_ambiguous_time_takes_first_occurrence_unless_offset_given() -> None:
    """02:30 on the fall-back night is the first (summer-time) one unless an offset says so."""
    text = scenario_text(
        one_agent(
            "      - [2026-10-25T02:30, 2026-10-25T02:45+01:00, phone]",
            "      - [08:00, available]",
        )
    )
    seg = parse_scenario(text, "fall.yaml").agents[0].segments[0]
    assert seg.start == utc(2026, 10, 25, 0, 30)  # +02:00
    assert seg.end == utc(2026, 10, 25, 1, 45)  # +01:00, the second occurrence


def test_overlapping_segments_are_an_error() -> None:
    """Two segments of one agent that overlap are refused, naming the later one."""
    text = scenario_text(
        one_agent(
            "      - [08:00, 10:00, phone]\n      - [09:30, 10:15, break]",
            "      - [08:00, available]",
        )
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "overlap.yaml")
    assert "agents[0].schedule[1]" in str(info.value)
    assert "overlaps" in str(info.value)
    assert info.value.line == line_of(text, "[09:30, 10:15, break]")


def test_unknown_rule_is_an_error_with_line() -> None:
    """An unknown rule name is an error naming the line and the valid names."""
    text = scenario_text().replace("out_of_adherence:", "out_of_adherance:")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "rules.yaml")
    assert info.value.line == line_of(text, "out_of_adherance")
    assert "rules.out_of_adherance" in str(info.value)
    assert "out_of_adherence" in str(info.value)  # the list of valid names


def test_unknown_state_is_an_error_with_line() -> None:
    """An unknown state is an error naming file, line and field."""
    text = scenario_text(
        one_agent(
            "      - [08:00, 10:00, phone]", "      - [08:00, available]\n      - [09:00, lunching]"
        )
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "states.yaml")
    line = line_of(text, "lunching")
    assert str(info.value).startswith(f"states.yaml:{line}: agents[0].states[1][1]:")
    assert "lunching" in str(info.value)


def test_bad_after_duration_is_an_error() -> None:
    """A rule's `after` must be a duration."""
    text = scenario_text().replace("after: 5m", "after: soon")
    with pytest.raises(ScenarioError, match=r"rules\.out_of_adherence\.after"):
        parse_scenario(text, "after.yaml")


def test_unknown_activity_and_missing_threshold_are_errors() -> None:
    """Schedules use known activities; threshold rules need a threshold."""
    text = scenario_text(one_agent("      - [08:00, 10:00, surfing]", "      - [08:00, available]"))
    with pytest.raises(ScenarioError, match="unknown activity 'surfing'"):
        parse_scenario(text, "act.yaml")
    text = scenario_text().replace("out_of_adherence: {after: 5m}", "queue_sla_below: {after: 1m}")
    with pytest.raises(ScenarioError, match=r"queue_sla_below\.threshold"):
        parse_scenario(text, "thr.yaml")


def test_missing_required_key_and_bad_timezone() -> None:
    """Missing `start` and an unknown time zone are named."""
    with pytest.raises(ScenarioError, match="start: this required key is missing"):
        parse_scenario("tenant: {customer_key: 1, timezone: UTC}\nend: 2026-01-01T10:00\n", "m")
    with pytest.raises(ScenarioError, match="unknown time zone 'Mars/Olympus'"):
        parse_scenario(scenario_text().replace("Europe/Oslo", "Mars/Olympus"), "tz")


def test_invalid_yaml_names_the_line() -> None:
    """YAML syntax errors carry the line."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: x\nagents: [1, 2\n", "broken.yaml")
    assert "not valid YAML" in str(info.value)
    assert info.value.line is not None


def test_unreadable_file_is_a_scenario_error(tmp_path: Path) -> None:
    """A missing file is reported as a ScenarioError naming it."""
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_expect_alerts_for_queues_and_pause_shorthand() -> None:
    """Queue alerts carry a queue id; `pause:Name` is accepted as a state."""
    text = scenario_text(
        one_agent("      - [08:00, 10:00, phone]", "      - [08:00, 'pause:Coaching']"),
        """\
expect:
  alerts:
    - {rule: queue_sla_below, queue: 4101, at: "09:00", resolved: null}
""",
    )
    sc = parse_scenario(text, "q.yaml")
    assert sc.agents[0].states[0][1] == AgentState(StateKind.PAUSE, "Coaching")
    assert sc.expect is not None
    alert = sc.expect.alerts[0]
    assert (alert.queue, alert.agent, alert.resolved) == ("4101", None, None)
    assert "Coaching" in sc.pause_type_names()


def test_every_example_scenario_parses() -> None:
    """Each file in tests/scenarios parses and its expected alerts name its agents or queues."""
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        sc = load_scenario(path)
        assert sc.expect is not None, path.name
        agent_ids = {a.id for a in sc.agents}
        queue_ids = {q.id for q in sc.queues}
        for alert in sc.expect.alerts:
            assert alert.agent in agent_ids or alert.queue in queue_ids, (path.name, alert)
            assert sc.start <= alert.at <= sc.end
