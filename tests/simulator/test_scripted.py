"""Scripted mode over HTTP: the simulator reports exactly what the scenario says, when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.core.clock import VirtualClock
from monitor.simulator import Faults, Simulator
from monitor.simulator.scenario import load_scenario
from tests.simulator.conftest import ServeFactory

SCENARIO = Path(__file__).parent.parent / "scenarios" / "break_overrun.yaml"
OSLO = ZoneInfo("Europe/Oslo")


def oslo(h: int, m: int, s: int = 0) -> datetime:
    return datetime(2026, 3, 2, h, m, s, tzinfo=OSLO).astimezone(UTC)


async def test_scripted_states_pause_types_and_durations(serve: ServeFactory) -> None:
    """The break at 10:00:30 shows as Pause with Break's id; the status duration counts from it."""
    scenario = load_scenario(SCENARIO)
    clock = VirtualClock(scenario.start)
    # tokens must outlive the jumps of the virtual clock
    faults = Faults(token_ttl=timedelta(days=1))
    served = await serve(Simulator.from_scenario(scenario, clock=clock, faults=faults), clock)
    assert served.key == "12345"
    token = await served.login()

    rows = (await (await served.get("/12345/users/stateinformation/Today", token)).json())["result"]
    assert rows == [
        {
            "userId": 1001,
            "firstName": "Ada",
            "lastName": "Nilsen",
            "userGroupName": "Support",
            "contactCentreStatus": "LoggedOff",
            "userStatus": "Available",
            "pauseTypeId": 0,
            "callsOffered": 0,
            "callsAnswered": 0,
        }
    ]
    types = (await (await served.get("/12345/pausetypes", token)).json())["result"]
    break_id = next(t["id"] for t in types if t["description"] == "Break")

    clock.set(oslo(10, 5))
    row = (await (await served.get("/12345/users/stateinformation/Today", token)).json())["result"][
        0
    ]
    assert (row["contactCentreStatus"], row["pauseTypeId"]) == ("Pause", break_id)
    one = (await (await served.get("/12345/users/1001/stateinformation", token)).json())["result"]
    assert one["statusDurationSeconds"] == 4 * 60 + 30
    assert one["pauseTypeName"] == "Break"

    clock.set(oslo(10, 24))
    row = (await (await served.get("/12345/users/stateinformation/Today", token)).json())["result"][
        0
    ]
    assert (row["contactCentreStatus"], row["userStatus"], row["pauseTypeId"]) == (
        "LoggedOn",
        "Available",
        0,
    )
    groups = (await (await served.get("/12345/usergroups", token)).json())["result"]
    assert [g["name"] for g in groups] == ["Support"]


async def test_scripted_queue_fields_follow_the_script(serve: ServeFactory) -> None:
    """Queue fields change at the scripted times and default to 0 (sla to 100) before."""
    scenario = load_scenario(SCENARIO)
    clock = VirtualClock(scenario.start)
    # tokens must outlive the jumps of the virtual clock
    faults = Faults(token_ttl=timedelta(days=1))
    served = await serve(Simulator.from_scenario(scenario, clock=clock, faults=faults), clock)
    token = await served.login()
    path = "/12345/visualqueues/stateinformation/All"
    q = (await (await served.get(path, token)).json())["result"][0]
    assert (q["id"], q["description"], q["sla"], q["queueSize"]) == (4101, "Support NO", 100, 0)
    clock.set(oslo(9, 10))
    q = (await (await served.get(path, token)).json())["result"][0]
    assert (q["queueSize"], q["agentsReady"], q["waitTimeMaxSeconds"], q["sla"]) == (7, 0, 140, 71)
    vqs = (await (await served.get("/12345/visualqueues", token)).json())["result"]
    assert [v["id"] for v in vqs] == [4101]


def test_scripted_tickers_are_derived_from_the_states() -> None:
    """Calls offered/answered, logged-on and pause seconds integrate the script since midnight."""
    from monitor.simulator.scenario import parse_scenario
    from monitor.simulator.scripted import ScriptedCentre

    text = """\
tenant: {customer_key: 1, timezone: Europe/Oslo}
start: 2026-03-02T07:30
end: 2026-03-03T01:00
agents:
  - id: 7
    name: Kari Olsen
    group: Sales
    states:
      - [08:00, available]
      - [08:10, connecting]
      - [08:10:10, connected]
      - [08:15, wrap_up]
      - [08:16, available]
      - [09:00, connected]
      - [09:05, available]
      - [10:00, pause, Break]
      - [10:15, available]
      - [12:00, logged_off]
"""
    centre = ScriptedCentre(parse_scenario(text, "tickers.yaml"))
    centre.advance_to(oslo(10, 20))
    ticker = centre.agent_tickers()["7"]
    assert (ticker.calls_offered, ticker.calls_answered) == (2, 2)
    assert centre.agent_call_counts()["7"] == (2, 2)
    assert ticker.logged_on_seconds == 2 * 3600 + 20 * 60
    assert ticker.pause_seconds == {"Break": 900.0}
    assert ticker.session_start == oslo(8, 0)
    centre.advance_to(datetime(2026, 3, 3, 0, 30, tzinfo=OSLO))
    next_day = centre.agent_tickers()["7"]
    assert centre.agent_call_counts()["7"] == (0, 0)
    assert (next_day.calls_offered, next_day.logged_on_seconds, next_day.pause_seconds) == (
        0,
        0,
        {},
    )


def test_incremental_playback_agrees_with_the_scenario() -> None:
    """Played forward in polls (and after a jump back), states and since match state_at/since."""
    from monitor.simulator.scripted import ScriptedCentre

    scenario = load_scenario(SCENARIO)
    centre = ScriptedCentre(scenario)
    times = [scenario.start + timedelta(seconds=37 * i) for i in range(0, 600)]
    times += [scenario.start + timedelta(minutes=5), scenario.end]  # a jump back, then forward
    for t in times:
        centre.advance_to(t)
        state, since = centre.agent_states()["1001"]
        assert state == scenario.state_at("1001", t), t
        assert since == scenario.state_since("1001", t), t
        ticker = centre.agent_tickers()["1001"]
        assert centre.agent_call_counts()["1001"] == (ticker.calls_offered, ticker.calls_answered)
