"""The one strict YAML reader reads configuration, rule and scenario files alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.app.config import ConfigError, load_config
from monitor.rules.loader import RulesError, load_rules
from monitor.rules.yaml_reader import YamlProblem, read_value, read_yaml
from monitor.simulator.scenario import ScenarioError, parse_scenario


def test_no_yaml_1_1_surprises() -> None:
    """off/yes stay strings, times and dates stay strings, a leading zero stays a string,
    true/false/null/ints/floats/hex keep their meaning."""
    data, node = read_yaml(
        "a: [off, yes, no, on, true, False, null, 10:00, 2026-03-02T07:30:00, 010, 00,"
        " 42, -3, 0.5, .5, 1e3, 0x1f, 1_000]\n"
    )
    assert node is not None
    assert data["a"] == [
        "off", "yes", "no", "on", True, False, None, "10:00", "2026-03-02T07:30:00", "010",
        "00", 42, -3, 0.5, 0.5, 1000.0, 31, "1_000",
    ]  # fmt: skip
    assert read_value("off") == "off"
    assert read_value("5") == 5


def test_a_syntax_error_names_its_line() -> None:
    """The line of the problem, and the problem without PyYAML's own position text."""
    with pytest.raises(YamlProblem) as err:
        read_yaml("a: 1\nb: [1, 2\nc: 3\n")
    assert err.value.line is not None
    assert err.value.line >= 2
    assert "line" not in err.value.problem


def test_the_three_file_kinds_report_the_same_line(tmp_path: Path) -> None:
    """A broken file of each kind names the same line, in its own error type."""
    broken = "a: 1\nb: [1, 2\nc: 3\n"
    line = read_line(broken)
    config = tmp_path / "config.yaml"
    config.write_text(broken)
    with pytest.raises(ConfigError) as c_err:
        load_config(config, environ={})
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text(broken)
    with pytest.raises(RulesError) as r_err:
        load_rules(rules)
    with pytest.raises(ScenarioError) as s_err:
        parse_scenario(broken, "s.yaml")
    assert c_err.value.line == line
    assert r_err.value.line == line
    assert s_err.value.line == line


def read_line(text: str) -> int | None:
    try:
        read_yaml(text)
    except YamlProblem as e:
        return e.line
    raise AssertionError("expected a YAML problem")
