"""Scenarios read through libyaml equal those read by the pure-Python strict reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.rules.yaml_reader import StrictLoader
from monitor.simulator.scenario import ScenarioError, _parse_scenario, parse_scenario

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_committed_scenario_reads_the_same_through_libyaml(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert parse_scenario(text, str(path)) == _parse_scenario(StrictLoader(text), str(path))


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nstart: [unclosed\n",  # not YAML
        "name: x\nname: y\n",  # a key twice
        "",  # empty
        "name: x\nagents:\n  - id: 010\n    name: 'Ann'\n    group: on\n",  # strict types
    ],
)
def test_problems_read_as_the_pure_python_reader_reports_them(text: str) -> None:
    with pytest.raises(ScenarioError) as fast:
        parse_scenario(text, "f.yaml")
    with pytest.raises(ScenarioError) as slow:
        _parse_scenario(StrictLoader(text), "f.yaml")
    assert str(fast.value) == str(slow.value)
