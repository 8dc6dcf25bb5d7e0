"""Scenarios read through libyaml equal those read by the pure-Python strict reader."""

from __future__ import annotations

import subprocess
import sys
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


def test_without_libyaml_the_pure_python_reader_reads_alone() -> None:
    """PyYAML built without libyaml has no CSafeLoader: the module must still import and read
    a scenario the same (in a child process, so no module here is reloaded)."""
    code = (
        "import sys, yaml\n"
        "del yaml.CSafeLoader\n"
        "from monitor.rules.yaml_reader import StrictLoader\n"
        "from monitor.simulator import scenario as m\n"
        "assert not issubclass(m._FastStrictLoader, yaml.CLoader)\n"
        "text = open(sys.argv[1], encoding='utf-8').read()\n"
        "got = m.parse_scenario(text, 'f')\n"
        "assert got.agents and got == m._parse_scenario(StrictLoader(text), 'f')\n"
        "print('same')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(SCENARIOS[0])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "same"
