"""Every scenario in tests/scenarios replays through the whole pipeline as its `expect` block says.

The `expect` blocks are computed by hand (or, for day_50_agents.yaml, by an independent reference
in make_day50.py) from ../shared/scenario-format.md, never copied from the monitor's output.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import redis.asyncio as aioredis

from monitor.simulator.replay import check, run_replay
from monitor.simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = ROOT / "tests" / "scenarios"
SCENARIOS = sorted(SCENARIO_DIR.glob("*.yaml"))


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_day50", SCENARIO_DIR / "make_day50.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "replay", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_the_library_holds_scenarios() -> None:
    """The scenario library is found and every scenario carries an expect block."""
    assert len(SCENARIOS) >= 15
    for path in SCENARIOS:
        assert load_scenario(path).expect is not None, path.name


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_scenario_replays_as_expected(path: Path, redis_client: aioredis.Redis) -> None:
    """Replaying the scenario yields exactly the expected alerts and adherence figures."""
    result = await run_replay(load_scenario(path), redis=redis_client)
    problems = check(result)
    assert not problems, f"{path.name}:\n" + "\n".join(f"  - {p}" for p in problems)


def test_cli_json_check_prints_only_json_events() -> None:
    """`replay --json --check` on a passing scenario exits 0 and prints only event JSON lines."""
    proc = _cli(str(SCENARIO_DIR / "break_overrun.yaml"), "--json", "--check")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines
    events = [json.loads(line) for line in lines]
    assert {e["event"] for e in events} == {"alert", "adherence"}
    firing = [(e["rule"], e["at"][11:19]) for e in events if e.get("status") == "firing"]
    assert sorted(firing) == [("break_overrun", "10:17:30"), ("out_of_adherence", "10:20:00")]
    assert events[-1]["event"] == "adherence"


def test_cli_check_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    """`--check` exits 1 and names the difference when an expected time is shifted."""
    text = (SCENARIO_DIR / "break_overrun.yaml").read_text(encoding="utf-8")
    wrong = text.replace('at: "10:17:30"', 'at: "10:19:00"')
    assert wrong != text
    path = tmp_path / "shifted.yaml"
    path.write_text(wrong, encoding="utf-8")
    proc = _cli(str(path), "--check")
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr
    assert "break_overrun" in output
    assert "10:19:00" in output


def test_cli_rejects_a_malformed_scenario_naming_the_line(tmp_path: Path) -> None:
    """A scenario with an unknown state exits 2 with an error naming the file and line."""
    text = (SCENARIO_DIR / "break_overrun.yaml").read_text(encoding="utf-8")
    bad = text.replace("[10:24:00, available]", "[10:24:00, dancing]")
    assert bad != text
    line = 1 + bad.splitlines().index(next(ln for ln in bad.splitlines() if "dancing" in ln))
    path = tmp_path / "malformed.yaml"
    path.write_text(bad, encoding="utf-8")
    proc = _cli(str(path), "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"malformed.yaml:{line}" in proc.stderr
    assert "dancing" in proc.stderr


@pytest.mark.parametrize("variant", ["wfm", "dense"])
def test_day50_file_is_what_the_generator_writes(variant: str) -> None:
    """The day-50 files are exactly the deterministic output of make_day50.py."""
    gen = _generator()
    sc, plans, notes = gen.generate(variant)
    written = gen.OUTPUTS[variant].read_text(encoding="utf-8")
    assert gen.render(sc, plans, notes) == written
    assert len(plans) == 50


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_reference_agrees_with_the_expect_block(path: Path) -> None:
    """The generator's independent reference derives each scenario's expect block exactly."""
    gen = _generator()
    scenario = load_scenario(path)
    assert scenario.expect is not None
    alerts, figures = gen.reference(gen.ref_scenario(scenario))
    derived = sorted(
        ((a.rule, a.subject, a.subject_id, a.at, a.resolved) for a in alerts), key=repr
    )
    expected = sorted(
        (
            (
                e.rule,
                "queue" if e.queue is not None else "agent",
                e.queue if e.queue is not None else e.agent,
                int(e.at.timestamp()),
                None if e.resolved is None else int(e.resolved.timestamp()),
            )
            for e in scenario.expect.alerts
        ),
        key=repr,
    )
    assert derived == expected
    assert set(figures) == set(scenario.expect.adherence)
    for agent, exp in scenario.expect.adherence.items():
        adherence, conformance = figures[agent]
        assert round(adherence, 4) == pytest.approx(exp.adherence, abs=1e-9)
        if exp.conformance is not None:
            assert conformance is not None
            assert round(conformance, 4) == pytest.approx(exp.conformance, abs=1e-9)
