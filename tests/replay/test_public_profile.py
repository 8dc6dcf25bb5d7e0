"""Every scenario replayed against the simulator's public-evidence profile (flat agent rows with
null names, no pause type, no duration, Pause/Busy, LoggedOff/System; queue rows without `sla`;
404 for every unevidenced path; envelopes of only result and code).

What public evidence does not carry cannot alert: `sla` is absent (no queue_sla_below) and
wrap-up reads as `Busy` (no long_wrap_up). Everything else must come out exactly as expected:
pause types come from the confirmed `users/{userId}` and the tenant's `pause_types` names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.simulator.replay import check, run_replay
from monitor.simulator.scenario import load_scenario

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
SCENARIOS = sorted(SCENARIO_DIR.glob("*.yaml"))
UNOBSERVABLE = ("queue_sla_below", "long_wrap_up")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_scenario_replays_against_public_profile(
    path: Path, redis_client: aioredis.Redis
) -> None:
    """Only the alerts of rules that need fields public evidence lacks may differ."""
    scenario = load_scenario(path)
    result = await run_replay(scenario, redis=redis_client, profile="public")
    problems = check(result)
    unexplained = [p for p in problems if not any(rule in p for rule in UNOBSERVABLE)]
    assert not unexplained, f"{path.name}:\n" + "\n".join(f"  - {p}" for p in unexplained)
    assert result.polls > 0
    if not any(rule in str(scenario.rules) for rule in UNOBSERVABLE):
        assert not problems


async def test_public_replay_calls_no_unevidenced_path(redis_client: aioredis.Redis) -> None:
    """Against the public profile the monitor never calls a path without public evidence, and
    asks users/{userId} for pause types within its budget."""
    scenario = load_scenario(SCENARIO_DIR / "long_pause_typed.yaml")
    result = await run_replay(scenario, redis=redis_client, profile="public")
    assert not check(result)
    assert result.requests_by_endpoint.get("user", 0) > 0
    for name in ("user_state_information", "agent_stats", "pause_types", "visual_queue_ticker"):
        assert result.requests_by_endpoint.get(name, 0) == 0, name
