"""`simulate --schedules-out`: the random centre's schedules as a file the importer accepts, equal
to what a simulator started with the same arguments follows (the compose stack relies on it)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from monitor.cli import build_parser
from monitor.core.clock import SystemClock
from monitor.rules.loader import load_rules
from monitor.schedules.importers import read_schedule_file
from monitor.simulator.centre import RandomCentre
from monitor.simulator.cli import simulate_command
from monitor.simulator.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--agents", "40", "--groups", "3", "--seed", "7", "--timezone", "Europe/Oslo"]


def test_published_schedules_import_and_match_the_served_centre(tmp_path: Path) -> None:
    """Every agent of the served roster is in the file on every day (days off as empty days),
    and the segments are the ones the centre plans for those dates."""
    out = tmp_path / "week.json"
    args = build_parser().parse_args(
        ["simulate", *ARGS, "--schedules-out", str(out), "--schedule-days", "3"]
    )
    assert simulate_command(args) == 0
    sim = Simulator.random(agents=40, groups=3, seed=7, timezone="Europe/Oslo")
    centre = sim.centre
    assert isinstance(centre, RandomCentre)
    plan = read_schedule_file(
        out, tz=sim.timezone, known_activities=load_rules(ROOT / "rules").activities
    )
    today = SystemClock().now().astimezone(sim.timezone).date()
    days = [today + timedelta(days=n) for n in range(3)]
    assert plan.dates == set(days)
    assert plan.agents == {u.agent_id for u in centre.users()}
    expected = sorted(s for d in days for s in centre.schedules_for(d))
    assert list(plan.segments) == expected
    assert len(json.loads(out.read_text())) == 40 * 3


def test_schedules_out_refuses_a_scenario_and_bad_day_counts(tmp_path: Path) -> None:
    """--schedules-out is for random mode and 1..60 days; otherwise exit 2 and no file."""
    out = tmp_path / "x.json"
    scenario = ROOT / "tests" / "scenarios" / "late_login.yaml"
    for extra in (["--scenario", str(scenario)], ["--schedule-days", "0"]):
        args = build_parser().parse_args(["simulate", "--schedules-out", str(out), *extra])
        assert simulate_command(args) == 2
        assert not out.exists()


def test_the_file_is_stable_across_simulator_start_times() -> None:
    """Two centres started hours apart plan the same day: the compose service and the simulator
    service need not start together."""
    early = RandomCentre(start=datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    late = RandomCentre(start=datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    day = date(2026, 3, 3)
    assert early.schedules_for(day) == late.schedules_for(day)
    assert [u.agent_id for u in early.users()] == [u.agent_id for u in late.users()]
