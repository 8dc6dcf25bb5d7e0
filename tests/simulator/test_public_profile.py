"""The simulator's public profile over real HTTP: only the shapes public evidence shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import build_parser
from monitor.core.clock import VirtualClock
from monitor.core.states import StateKind
from monitor.puzzel.endpoints import ENDPOINTS
from monitor.simulator import Simulator
from monitor.simulator.cli import banner, build_simulator
from monitor.simulator.profiles import (
    AGENT_ROW_FIELDS,
    NULL_FIRST_NAME_EVERY,
    NULL_LAST_NAME_EVERY,
    QUEUE_ROW_FIELDS,
    UNSERVED_ENDPOINTS,
)
from monitor.simulator.scenario import load_scenario
from tests.simulator import public_fixtures
from tests.simulator.conftest import START, Served, ServeFactory

SCENARIOS = Path(__file__).parent.parent / "scenarios"
PUBLIC_ENVELOPE = {"result", "code"}
NOT_FOUND = {"result": None, "code": 404}


@pytest.fixture
async def public(serve: ServeFactory) -> Served:
    """The conftest's 40-agent centre at 10:00 Oslo time, in the public profile."""
    clock = VirtualClock(START)
    sim = Simulator.random(agents=40, groups=4, queues=3, seed=7, clock=clock, profile="public")
    return await serve(sim, clock)


def concrete_path(served: Served, name: str) -> str:
    endpoint = ENDPOINTS[name]
    values = {
        "customerKey": served.key,
        "result": "All",
        "tickerPeriodWindow": "Today",
        "userId": served.sim.centre.users()[0].id,
    }
    return endpoint.path(**{k: v for k, v in values.items() if "{" + k + "}" in endpoint.template})


async def get_json(served: Served, path: str, token: str | None, **params: Any) -> Any:
    r = await served.get(path, token, **params)
    return r.status, await r.json()


async def rows(served: Served, token: str, name: str) -> list[dict[str, Any]]:
    params = {"userId": served.sim.credentials.user_id}
    status, body = await get_json(served, concrete_path(served, name), token, **params)
    assert status == 200
    assert set(body) == PUBLIC_ENVELOPE
    result: list[dict[str, Any]] = body["result"]
    return result


async def test_every_served_endpoint_answers_only_result_and_code(public: Served) -> None:
    token = await public.login()
    served = [n for n, e in ENDPOINTS.items() if e.host == "api" and n not in UNSERVED_ENDPOINTS]
    assert len(served) == 8
    for name in served:
        status, body = await get_json(public, concrete_path(public, name), token)
        assert (name, status, set(body), body["code"]) == (name, 200, PUBLIC_ENVELOPE, 0)


async def test_agent_rows_are_flat_with_public_statuses(public: Served) -> None:
    """Exact keys; Pause/Busy, LoggedOff/System, and Available or Busy when logged on."""
    token = await public.login()
    truth = {a: s for a, (s, _) in public.sim.agent_states().items()}
    found = await rows(public, token, "user_group_state_information")
    assert len(found) == 40
    seen_kinds = set()
    for row in found:
        assert set(row) == set(AGENT_ROW_FIELDS)
        kind = truth[str(row["userId"])].kind
        seen_kinds.add(kind)
        expected = {
            StateKind.LOGGED_OFF: ("LoggedOff", "System"),
            StateKind.PAUSE: ("Pause", "Busy"),
            StateKind.AVAILABLE: ("LoggedOn", "Available"),
        }.get(kind, ("LoggedOn", "Busy"))
        assert (row["contactCentreStatus"], row["userStatus"]) == expected
    # the centre at 10:00 has all of these, so every mapping above was exercised
    assert {StateKind.PAUSE, StateKind.LOGGED_OFF, StateKind.AVAILABLE} < seen_kinds
    assert seen_kinds - {StateKind.PAUSE, StateKind.LOGGED_OFF, StateKind.AVAILABLE}


async def test_names_are_null_by_user_id_in_rows_and_users_list(public: Served) -> None:
    token = await public.login()
    state_rows = await rows(public, token, "user_group_state_information")
    user_list = await rows(public, token, "users")
    for by_id in ({r["userId"]: r for r in state_rows}, {u["id"]: u for u in user_list}):
        no_first = {i for i, r in by_id.items() if r["firstName"] is None}
        no_last = {i for i, r in by_id.items() if r["lastName"] is None}
        assert no_first == {i for i in by_id if i % NULL_FIRST_NAME_EVERY == 0}
        assert no_last == {i for i in by_id if i % NULL_LAST_NAME_EVERY == 0}
        assert no_first
        assert no_last
        assert all(isinstance(r["firstName"], str) for i, r in by_id.items() if i not in no_first)
    assert all(set(u) == {"id", "groupId", "firstName", "lastName", "userName"} for u in user_list)


async def test_queue_rows_carry_only_h_fields_and_the_first_lacks_abandoned(
    public: Served,
) -> None:
    token = await public.login()
    found = await rows(public, token, "visual_queue_state_information")
    first_id = public.sim.centre.visual_queues()[0].id
    assert len(found) == 3
    for row in found:
        expected = set(QUEUE_ROW_FIELDS) - (
            {"callsAbandonedToday"} if row["id"] == first_id else set()
        )
        assert set(row) == expected
    # filtered to the first queue alone, it still lacks the field
    params = {"userId": public.sim.credentials.user_id, "visualQueueId": first_id}
    path = concrete_path(public, "visual_queue_state_information")
    _, body = await get_json(public, path, token, **params)
    assert [r["id"] for r in body["result"]] == [first_id]
    assert "callsAbandonedToday" not in body["result"][0]
    assert "sla" not in body["result"][0]


async def test_unverified_endpoints_answer_404_exactly_as_an_unknown_path(public: Served) -> None:
    token = await public.login()
    unknown = await public.get(f"/{public.key}/no/such/thing", token)
    unknown_body = await unknown.json()
    assert (unknown.status, unknown_body) == (404, NOT_FOUND)
    assert len(UNSERVED_ENDPOINTS) == 5
    for name in sorted(UNSERVED_ENDPOINTS):
        path = concrete_path(public, name)
        for auth in (token, None):  # not even a 401 first: the path does not exist
            status, body = await get_json(public, path, auth, userId=1)
            assert (name, status, body) == (name, 404, NOT_FOUND)
        assert {r.status for r in public.sim.requests_for(name)} == {404}


async def test_users_by_id_keeps_pause_type_and_session_time_for_a_paused_agent(
    public: Served,
) -> None:
    token = await public.login()
    truth = public.sim.agent_states()
    paused = next(a for a, (s, _) in truth.items() if s.kind is StateKind.PAUSE)
    pause_type = truth[paused][0].pause_type
    assert pause_type is not None
    status, body = await get_json(public, f"/{public.key}/users/{paused}", token)
    assert status == 200
    assert set(body) == PUBLIC_ENVELOPE
    user = body["result"]
    assert user["pauseTypeId"] == public.sim.centre.pause_types()[pause_type]
    assert (user["contactCentreStatus"], user["userStatus"]) == ("Pause", "Busy")
    assert isinstance(user["sessionTime"], str)


async def test_errors_use_the_public_envelope_with_the_http_status(public: Served) -> None:
    status, body = await get_json(public, "/accesstokeninformation", None)
    assert (status, body) == (401, {"result": None, "code": 401})
    token = await public.login()
    path = f"/{public.key}/users/stateinformation/Yesterday"
    status, body = await get_json(public, path, token)
    assert (status, body) == (400, {"result": None, "code": 400})
    public.sim.faults.throttle(1, retry_after=2)
    r = await public.get(f"/{public.key}/usergroups", token)
    assert (r.status, await r.json(), r.headers["Retry-After"]) == (
        429,
        {"result": None, "code": 429},
        "2",
    )


async def test_the_full_profile_is_still_the_default_and_serves_everything(
    served: Served,
) -> None:
    assert served.sim.profile == "full"
    token = await served.login()
    for name in sorted(UNSERVED_ENDPOINTS):
        status, body = await get_json(served, concrete_path(served, name), token, userId=1)
        assert (name, status, set(body)) == (name, 200, {"result", "code", "id", "message"})
    path = concrete_path(served, "user_group_state_information")
    _, body = await get_json(served, path, token)
    paused = [r for r in body["result"] if r["contactCentreStatus"] == "Pause"]
    assert all("pauseTypeId" in r for r in body["result"])
    assert paused
    assert {r["userStatus"] for r in paused} == {"Available"}
    assert all(isinstance(r["firstName"], str) for r in body["result"])


async def test_scripted_mode_takes_the_profile_too(serve: ServeFactory) -> None:
    scenario = load_scenario(SCENARIOS / "break_overrun.yaml")
    sim = Simulator.from_scenario(scenario, profile="public")
    assert isinstance(sim.clock, VirtualClock)
    sim.clock.set(scenario.start.replace(hour=9, minute=5))  # 10:05 Oslo: Ada is on her break
    served = await serve(sim, sim.clock)
    token = await served.login()
    (row,) = await rows(served, token, "user_group_state_information")
    assert (row["userId"], row["contactCentreStatus"], row["userStatus"]) == (1001, "Pause", "Busy")
    assert set(row) == set(AGENT_ROW_FIELDS)


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="full, public"):
        Simulator.random(agents=1, profile="private")


def test_the_cli_builds_a_public_simulator_and_says_so() -> None:
    args = build_parser().parse_args(["simulate", "--agents", "5", "--profile", "public"])
    sim, description = build_simulator(args)
    assert sim.profile == "public"
    assert "  profile:    public (" in banner(sim, description, "http://127.0.0.1:1")
    default = build_parser().parse_args(["simulate", "--agents", "5"])
    assert build_simulator(default)[0].profile == "full"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--profile", "private"])


async def test_checked_in_fixtures_match_what_the_simulator_serves() -> None:
    """tests/puzzel/fixtures/public/ is current: regenerate with
    `.venv/bin/python -m tests.simulator.public_fixtures` when the profile changes."""
    answers = await public_fixtures.record_answers(public_fixtures.fixture_simulator())
    on_disk = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in public_fixtures.FIXTURE_DIR.glob("*.json")
    }
    assert on_disk == answers
    served = {n for n, e in ENDPOINTS.items() if n not in UNSERVED_ENDPOINTS}
    assert set(on_disk) == served | {"not_found", "unauthorized"}
    assert on_disk["not_found"] == NOT_FOUND
    paused_user = on_disk["user"]["result"]
    assert paused_user["contactCentreStatus"] == "Pause"
    assert paused_user["pauseTypeId"] > 0
