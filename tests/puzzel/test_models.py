"""Models against recorded responses: fixtures validate, extras are ignored, gaps are named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.puzzel import models as m
from monitor.puzzel.exceptions import PuzzelMalformedResponse
from monitor.puzzel.models import parse_as
from tests.puzzel.conftest import load_fixture

# fixture name -> (type of `result`, a required field of one row: only what the monitor cannot do
# without is required, so for most endpoints that is the id)
ENVELOPED: dict[str, tuple[Any, str]] = {
    "access_token_information": (m.TokenInformation, "userId"),
    "access_token_information_legacy": (m.TokenInformation, "accessTokenExpiry"),
    "visual_queues": (list[m.VisualQueue], "id"),
    "visual_queue_state_information": (list[m.VisualQueueState], "id"),
    "user_group_state_information": (list[m.UserGroupAgentState], "contactCentreStatus"),
    "user": (m.User, "id"),
    "users": (list[m.UserSummary], "id"),
    "user_groups": (list[m.UserGroup], "name"),
    "queues": (list[m.SystemQueue], "id"),
    "user_state_information": (m.UserStateInformation, "contactCentreStatus"),
    "agent_stats": (list[m.AgentStats], "userId"),
    "visual_queue_ticker": (list[m.VisualQueueTicker], "id"),
    "access_point_tickers": (list[m.AccessPointTicker], "accesspoint"),
    "pause_types": (list[m.PauseType], "id"),
}


def _first_row(result: Any) -> dict[str, Any]:
    row = result[0] if isinstance(result, list) else result
    assert isinstance(row, dict)
    return row


@pytest.mark.parametrize("name", sorted(ENVELOPED))
def test_every_fixture_validates(name: str) -> None:
    """Each recorded response is a code-0 envelope whose result fits its model."""
    envelope = m.Envelope.model_validate(load_fixture(name))
    assert envelope.code == 0
    type_, _ = ENVELOPED[name]
    parsed = parse_as(type_, envelope.result, endpoint=name)
    assert parsed  # non-empty list or a model


@pytest.mark.parametrize("name", sorted(ENVELOPED))
def test_unknown_fields_are_ignored(name: str) -> None:
    """Fields Puzzel may add later do not break validation and do not show up on the model."""
    result = load_fixture(name)["result"]
    _first_row(result)["someNewField"] = {"nested": [1, 2]}
    type_, _ = ENVELOPED[name]
    parsed = parse_as(type_, result, endpoint=name)
    row = parsed[0] if isinstance(parsed, list) else parsed
    assert not hasattr(row, "someNewField")
    assert not hasattr(row, "some_new_field")


@pytest.mark.parametrize("name", sorted(ENVELOPED))
def test_missing_required_field_is_named(name: str) -> None:
    """Dropping a required field raises PuzzelMalformedResponse naming endpoint and field path."""
    result = load_fixture(name)["result"]
    type_, field = ENVELOPED[name]
    del _first_row(result)[field]
    with pytest.raises(PuzzelMalformedResponse) as err:
        parse_as(type_, result, endpoint=name)
    prefix = "result.0." if isinstance(result, list) else "result."
    assert err.value.field == prefix + field
    assert name in str(err.value)
    assert field in str(err.value)


def test_visual_queue_state_values() -> None:
    """4.2 rows carry the counters under snake_case names; ones not sent are None, not 0."""
    rows = parse_as(
        list[m.VisualQueueState],
        load_fixture("visual_queue_state_information")["result"],
        endpoint="x",
    )
    first, second = rows
    assert (first.id, first.queue_size, first.wait_time_max_seconds, first.sla) == (4101, 3, 95, 92)
    assert first.calls_answered_within_sla == 50
    assert second.queue_size_ciq is None
    assert second.silent_calls_today == 0
    assert first.silent_calls_today is None


def test_user_group_state_pause_fields() -> None:
    """A paused agent row keeps pause type id and name; others have None."""
    rows = parse_as(
        list[m.UserGroupAgentState],
        load_fixture("user_group_state_information")["result"],
        endpoint="x",
    )
    assert rows[1].pause_type_id == 4812
    assert rows[1].pause_type_name == "Break"
    assert rows[0].pause_type_id is None
    assert rows[0].first_name == "Ada"


def test_user_profiles_and_session_time() -> None:
    """4.4 carries nested profiles and an ISO session time read as aware UTC."""
    user = parse_as(m.User, load_fixture("user")["result"], endpoint="user")
    assert user.e_mail == "ada@example.no"
    assert user.session_time == datetime(2025, 3, 4, 7, 58, 12, 120000, tzinfo=UTC)
    assert user.profiles[0].qualities[0].elements[0].user_level == 5


def test_token_information_both_date_forms_agree() -> None:
    """accessTokenExpiry as /Date()/ and accessTokenExpiryIso parse to the same instant."""
    legacy = parse_as(
        m.TokenInformation,
        load_fixture("access_token_information_legacy")["result"],
        endpoint="x",
    )
    modern = parse_as(
        m.TokenInformation, load_fixture("access_token_information")["result"], endpoint="x"
    )
    assert legacy.access_token_expiry == legacy.access_token_expiry_iso
    assert legacy.access_token_expiry == modern.access_token_expiry
    assert legacy.customer_key == "10001"  # numeric on the wire, a string here
    assert legacy.user_id == 158001


def test_access_point_numbers_become_strings() -> None:
    """An access point sent as a number is kept as its digits."""
    rows = parse_as(
        list[m.AccessPointTicker], load_fixture("access_point_tickers")["result"], endpoint="x"
    )
    assert [r.accesspoint for r in rows] == ["4721000000", "4722000000"]


def test_agent_stats_nested() -> None:
    """Agent stats keep overview, pause and per-queue totals."""
    rows = parse_as(list[m.AgentStats], load_fixture("agent_stats")["result"], endpoint="x")
    assert rows[0].overview.in_pause_seconds == 1260
    assert [p.description for p in rows[0].pause] == ["Break", "Lunch"]
    assert rows[0].queues_total[0].visual_queue_id == 4101


def test_login_response_hides_secrets_and_reads_local_expiry() -> None:
    """LogIn's token and session id are SecretStr; the zone-less expiry is Oslo local."""
    login = m.LoginResponse.model_validate(load_fixture("login"))
    assert login.access_token is not None
    assert login.refresh_token is not None
    assert "eyJ" not in repr(login)
    assert "5f0e7c9a" not in repr(login)
    assert login.refresh_token.session_id.get_secret_value().startswith("5f0e7c9a")
    assert login.refresh_token.expiry_date == datetime(2026, 3, 2, 20, 26, 50, 510000, tzinfo=UTC)


def test_oidc_token_response_snake_case() -> None:
    """The OAuth answer is read by its snake_case names, token hidden in repr."""
    tok = m.OidcTokenResponse.model_validate(load_fixture("oidc_token"))
    assert tok.expires_in == 3600
    assert "eyJ" not in repr(tok)


def test_models_accept_field_names_too() -> None:
    """Models can be built from snake_case names as well as camelCase aliases."""
    a = m.UserGroup.model_validate({"id": 1, "name": "Support"})
    b = m.PauseType(id=4812, description="Break")
    c = m.QueueItem.model_validate({"id": 1, "key": "k", "service_id": 5})
    assert (a.name, b.description, c.service_id) == ("Support", "Break", 5)


def test_string_ids_from_scripted_scenarios_are_kept() -> None:
    """An agent id that is a name stays a string; numeric ids stay ints."""
    row = {
        "userId": "ada",
        "firstName": "Ada",
        "lastName": "N",
        "userGroupName": "S",
        "contactCentreStatus": "LoggedOn",
        "userStatus": "Available",
        "callsOffered": 0,
        "callsAnswered": 0,
    }
    assert m.UserGroupAgentState.model_validate(row).user_id == "ada"
    assert m.UserGroupAgentState.model_validate({**row, "userId": 7}).user_id == 7


def test_envelope_requires_code() -> None:
    """An envelope without `code` is rejected, naming it."""
    with pytest.raises(ValidationError, match="code"):
        m.Envelope.model_validate({"result": []})


def test_error_envelope_fixture() -> None:
    """The recorded error envelope has a non-zero code and a message."""
    env = m.Envelope.model_validate(load_fixture("error_envelope"))
    assert (env.code, env.message, env.result) == (3, "Invalid customerKey", None)


def test_malformed_error_counts_other_problems() -> None:
    """With several bad fields the error names the first and says how many more."""
    with pytest.raises(PuzzelMalformedResponse, match=r"and 1 more"):
        parse_as(list[m.UserGroup], [{}], endpoint="user_groups")


def test_pause_type_id_zero_means_not_paused() -> None:
    """pauseTypeId 0 (sent for agents not in pause) reads as None; real ids are kept."""
    row = load_fixture("user_group_state_information")["result"][0]
    assert m.UserGroupAgentState.model_validate({**row, "pauseTypeId": 0}).pause_type_id is None
    assert m.UserGroupAgentState.model_validate({**row, "pauseTypeId": 4812}).pause_type_id == 4812
    usi = load_fixture("user_state_information")["result"]
    assert m.UserStateInformation.model_validate({**usi, "pauseTypeId": 0}).pause_type_id is None


PUBLIC_ROWS: dict[str, Any] = {
    "visual_queues": m.VisualQueue,
    "visual_queue_state_information": m.VisualQueueState,
    "user_group_state_information": m.UserGroupAgentState,
    "users": m.UserSummary,
    "user_groups": m.UserGroup,
    "queues": m.SystemQueue,
}


@pytest.mark.parametrize("name", sorted(PUBLIC_ROWS))
def test_public_evidence_fixtures_parse_without_rejections(name: str) -> None:
    """The public-profile answers (null names, no pause type, envelopes of result and code,
    missing ticker fields) fit the models row by row, with nothing dropped."""
    body = load_fixture(f"public/{name}")
    assert set(body) == {"result", "code"}
    rows = m.parse_rows(PUBLIC_ROWS[name], body["result"], endpoint=name)
    assert rows.rejected == []
    assert len(rows.rows) == len(body["result"]) > 0


def test_public_agent_rows_keep_null_names_and_pause() -> None:
    """Null first or last names are kept as None; Pause/Busy rows carry no pause type."""
    rows = m.parse_rows(
        m.UserGroupAgentState,
        load_fixture("public/user_group_state_information")["result"],
        endpoint="x",
    ).rows
    assert any(r.first_name is None for r in rows)
    paused = [r for r in rows if r.contact_centre_status == "Pause"]
    assert paused
    assert all(r.user_status == "Busy" and r.pause_type_id is None for r in paused)
