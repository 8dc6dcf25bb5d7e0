"""Rule and activity files, scenario blocks and `rules check`."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.core.states import AgentState, StateKind
from monitor.engine.model import RuleName
from monitor.rules.loader import (
    RulesError,
    check_command,
    default_ruleset,
    load_rules,
    ruleset_from_mapping,
)

REPO_RULES = Path(__file__).resolve().parents[2] / "rules"


def test_shipped_rule_files_equal_the_builtin_defaults() -> None:
    """rules/activities.yaml and rules/rules.yaml say the same as default_ruleset()."""
    assert load_rules(REPO_RULES) == default_ruleset()


def test_default_activities_follow_the_contract() -> None:
    """phone/break/lunch/meeting/training/off allow the contract's states."""
    acts = default_ruleset().activities
    assert acts["phone"].allows(AgentState(StateKind.WRAP_UP))
    assert not acts["phone"].allows(AgentState(StateKind.PAUSE, "Break"))
    assert acts["lunch"].allows(AgentState(StateKind.PAUSE, "Lunch"))
    assert acts["meeting"].allows(AgentState(StateKind.LOGGED_OFF))
    assert not acts["break"].allows(AgentState(StateKind.LOGGED_OFF))
    assert acts["off"].allows(AgentState(StateKind.LOGGED_OFF))
    assert set(acts) == {"phone", "break", "lunch", "meeting", "training", "off"}


def test_scenario_blocks_enable_only_listed_rules() -> None:
    """A scenario's rules block enables exactly the rules it names, with its parameters."""
    rs = ruleset_from_mapping(
        {
            "break_overrun": {"after": "2m"},
            "queue_sla_below": {"after": "1m", "threshold": 80},
            "long_pause": {"after": "10m", "pause_type": "Coaching"},
        },
        {
            "coaching": {"allowed": ["pause:Coaching", "logged_off"]},
            "admin": {"allowed": ["available"], "neutral": True},
        },
    )
    assert set(rs.rules) == {
        RuleName.BREAK_OVERRUN,
        RuleName.QUEUE_SLA_BELOW,
        RuleName.LONG_PAUSE,
    }
    assert rs.rules[RuleName.BREAK_OVERRUN].after == timedelta(minutes=2)
    assert rs.rules[RuleName.QUEUE_SLA_BELOW].threshold == 80
    assert rs.rules[RuleName.LONG_PAUSE].pause_type == "Coaching"
    assert rs.activities["coaching"].allows(AgentState(StateKind.PAUSE, "Coaching"))
    assert not rs.activities["coaching"].allows(AgentState(StateKind.PAUSE, "Break"))
    assert rs.activities["admin"].neutral
    assert "phone" in rs.activities


@pytest.mark.parametrize(
    ("rules", "activities", "fragment"),
    [
        ({"brake_overrun": {"after": "2m"}}, None, "rules.brake_overrun: unknown rule"),
        ({"break_overrun": {"after": "two minutes"}}, None, "rules.break_overrun.after"),
        ({"queue_sla_below": {"after": "1m"}}, None, "queue_sla_below.threshold: queue_sla"),
        ({"queue_sla_below": {"threshold": 180}}, None, "percentage 0-100"),
        ({"team_adherence_below": {"threshold": 85}}, None, "ratio between 0 and 1"),
        ({"queue_wait_above": {"threshold": "soon"}}, None, "queue_wait_above.threshold"),
        ({"late_login": {"threshold": 3}}, None, "takes no threshold"),
        ({}, {"coaching": {"allowed": ["paused"]}}, "activities.coaching.allowed: unknown state"),
        ({}, {"coaching": {"allowed": ["busy:Coaching"]}}, "'pause' or 'pause:Name'"),
        ({"out_of_adherence": {"after": "5m", "escalate_after": "1m"}}, None, "longer than"),
    ],
)
def test_bad_blocks_name_the_key_and_the_expectation(
    rules: dict, activities: dict | None, fragment: str
) -> None:
    """Invalid rules or activities raise RulesError naming the key path and what was expected."""
    with pytest.raises(RulesError) as err:
        ruleset_from_mapping(rules, activities, source="scenario.yaml")
    assert fragment in str(err.value)
    assert str(err.value).startswith("scenario.yaml")


def test_rules_file_error_names_file_and_line(tmp_path: Path) -> None:
    """An error in rules.yaml names the file, the line and the field."""
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  late_login:\n    after: 2m\n  long_pause:\n    after: 20m\n    colour: red\n"
    )
    with pytest.raises(RulesError) as err:
        load_rules(tmp_path)
    assert err.value.line == 6
    assert str(err.value).startswith(f"{tmp_path / 'rules.yaml'}:6: rules.long_pause.colour")


def test_rules_file_overrides_and_disables(tmp_path: Path) -> None:
    """rules.yaml overrides defaults per rule and `enabled: false` turns one off; `off` stays
    an activity name despite YAML 1.1."""
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  late_login: {after: 4m, severity: critical}\n  long_pause: {enabled: false}\n"
    )
    (tmp_path / "activities.yaml").write_text(
        "activities:\n  off: {allowed: [logged_off]}\n"
        "  admin: {allowed: [available], neutral: true}\n"
    )
    rs = load_rules(tmp_path)
    assert rs.rules[RuleName.LATE_LOGIN].after == timedelta(minutes=4)
    assert rs.rules[RuleName.LATE_LOGIN].severity == "critical"
    assert rs.enabled(RuleName.LONG_PAUSE) is None
    assert rs.enabled(RuleName.OUT_OF_ADHERENCE) is not None
    assert rs.activities["admin"].neutral
    assert "off" in rs.activities


def test_check_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`rules check` exits 0 with a summary for good files and 2 with the error for bad ones."""
    assert check_command(argparse.Namespace(path=str(REPO_RULES))) == 0
    assert "out_of_adherence" in capsys.readouterr().out
    (tmp_path / "rules.yaml").write_text("rules:\n  nonsense: {}\n")
    assert check_command(argparse.Namespace(path=str(tmp_path))) == 2
    assert "unknown rule" in capsys.readouterr().err
    assert check_command(argparse.Namespace(path=str(tmp_path / "missing"))) == 2


def test_a_bad_severity_is_echoed(tmp_path: Path) -> None:
    """`severity: warnin` names the key, the choices and the value given."""
    (tmp_path / "rules.yaml").write_text("rules:\n  late_login:\n    severity: warnin\n")
    with pytest.raises(RulesError) as err:
        load_rules(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'rules.yaml'}:3: rules.late_login.severity: "
        "expected one of info, warning, critical, got 'warnin'"
    )


def test_a_yaml_syntax_error_names_one_line(tmp_path: Path) -> None:
    """A YAML syntax error is reported at the problem's line, and no second line number."""
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  late_login:\n    after: 2m\n  long_pause: {after: 20m\n  early_logoff: {}\n"
    )
    with pytest.raises(RulesError) as err:
        load_rules(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'rules.yaml'}:{err.value.line}: not valid YAML: ")
    assert "line" not in message.split("not valid YAML: ", 1)[1]
