"""The simulator over real HTTP: auth flows, envelope, field names, filters and injected faults."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import timedelta

import aiohttp
import pytest

from monitor.core.clock import VirtualClock
from monitor.core.states import StateKind
from monitor.puzzel.endpoints import ENDPOINTS
from monitor.simulator import Faults, Simulator
from tests.simulator.conftest import START, Served, ServeFactory

ZONELESS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?$")
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MS_DATE = re.compile(r"^/Date\((\d+)\+0000\)/$")


def api_paths(served: Served) -> dict[str, str]:
    """A concrete path for every ContactCentre5 endpoint in the shared table."""
    some_user = served.sim.centre.users()[0].id
    values = {
        "customerKey": served.key,
        "result": "All",
        "tickerPeriodWindow": "Today",
        "userId": some_user,
    }
    return {
        name: e.path(**{k: v for k, v in values.items() if "{" + k + "}" in e.template})
        for name, e in ENDPOINTS.items()
        if e.host == "api"
    }


async def test_login_accepts_camel_and_pascal_case_and_returns_the_auth_body(
    served: Served,
) -> None:
    """LogIn answers the 2a body (not enveloped), with a zone-less refresh expiry."""
    creds = served.sim.credentials
    for body in (
        {
            "customerKey": creds.customer_key,
            "userName": creds.user_name,
            "password": creds.password.get_secret_value(),
        },
        {
            "CustomerKey": creds.customer_key,
            "UserName": creds.user_name,
            "Password": creds.password.get_secret_value(),
            "clientName": "tests",
        },
    ):
        async with served.http.post(
            served.urls["auth"] + "/api/Authenticate/LogIn", json=body
        ) as r:
            assert r.status == 200
            data = await r.json()
        assert set(data) == {
            "accessToken",
            "refreshToken",
            "languageCode",
            "twoFactorRequired",
            "twoFactor",
            "logoutFromExternalIdentityProvider",
        }
        assert data["twoFactorRequired"] is False
        assert set(data["refreshToken"]) == {"customerKey", "sessionId", "expiryDate"}
        assert ZONELESS.match(data["refreshToken"]["expiryDate"])
        assert data["refreshToken"]["customerKey"] == creds.customer_key


async def test_login_with_a_wrong_password_is_refused(served: Served) -> None:
    """Wrong credentials get a 401 and no token."""
    async with served.http.post(
        served.urls["auth"] + "/api/Authenticate/LogIn",
        json={"customerKey": served.key, "userName": "api.monitor", "password": "nope"},
    ) as r:
        assert r.status == 401
        assert "accessToken" not in await r.json()


async def test_get_access_token_returns_a_bare_string_token(served: Served) -> None:
    """GetAccessToken with the LogIn session answers a JSON string usable as a bearer token."""
    creds = served.sim.credentials
    async with served.http.post(
        served.urls["auth"] + "/api/Authenticate/LogIn",
        json={
            "customerKey": creds.customer_key,
            "userName": creds.user_name,
            "password": creds.password.get_secret_value(),
        },
    ) as r:
        session_id = (await r.json())["refreshToken"]["sessionId"]
    async with served.http.post(
        served.urls["auth"] + "/api/Authenticate/GetAccessToken",
        json={"customerKey": creds.customer_key, "sessionId": session_id},
    ) as r:
        assert r.status == 200
        token = json.loads(await r.text())
    assert isinstance(token, str)
    r2 = await served.get("/accesstokeninformation", token)
    assert r2.status == 200
    async with served.http.post(
        served.urls["auth"] + "/api/Authenticate/GetAccessToken",
        json={"customerKey": creds.customer_key, "sessionId": "not-a-session"},
    ) as r:
        assert r.status == 401


async def test_puzzel_id_client_credentials_flow(served: Served) -> None:
    """The OIDC token endpoint issues tokens for the right client and scope, with OAuth errors."""
    creds = served.sim.credentials
    url = served.urls["id"] + "/id/connect/token"
    good = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret.get_secret_value(),
        "scope": f"contact-centre:{creds.customer_key}:{creds.user_id}",
    }
    async with served.http.post(url, data=good) as r:
        assert r.status == 200
        body = await r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == good["scope"]
    info = await served.get("/accesstokeninformation", body["access_token"])
    assert (await info.json())["result"]["userId"] == creds.user_id

    async with served.http.post(url, data=good | {"client_secret": "wrong"}) as r:
        assert r.status == 401
        assert (await r.json())["error"] == "invalid_client"
    async with served.http.post(url, data=good | {"scope": "contact-centre:999:1"}) as r:
        assert r.status == 400
        err = await r.json()
        assert err["error"] == "invalid_scope"
        assert err["error_description"]
    async with served.http.post(url, data=good | {"grant_type": "password"}) as r:
        assert (await r.json())["error"] == "unsupported_grant_type"
    basic = base64.b64encode(
        f"{creds.client_id}:{creds.client_secret.get_secret_value()}".encode()
    ).decode()
    form = {"grant_type": "client_credentials", "scope": good["scope"]}
    async with served.http.post(url, data=form, headers={"Authorization": f"Basic {basic}"}) as r:
        assert r.status == 200


async def test_every_api_endpoint_answers_in_the_envelope(served: Served) -> None:
    """Each ContactCentre5 endpoint of the shared table is routed and answers {result, code 0}."""
    token = await served.login()
    for name, path in api_paths(served).items():
        r = await served.get(path, token)
        assert r.status == 200, name
        body = await r.json()
        assert set(body) == {"result", "code", "id", "message"}, name
        assert body["code"] == 0
        assert isinstance(body["id"], str)
        assert body["message"] == ""
        assert body["result"] is not None, name
    names = {rec.endpoint for rec in served.sim.requests}
    assert set(api_paths(served)) <= names


async def test_paths_match_case_insensitively(served: Served) -> None:
    """`/contactcentre5/.../USERGROUPS` is the same resource as `/ContactCentre5/.../usergroups`."""
    token = await served.login()
    root = served.api.replace("/ContactCentre5", "/contactcentre5")
    async with served.http.get(
        f"{root}/{served.key}/USERGROUPS", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert r.status == 200
        assert [g["name"] for g in (await r.json())["result"]][:2] == ["Support", "Sales"]
    assert served.sim.requests[-1].endpoint == "user_groups"


async def test_field_names_follow_the_api_notes(served: Served) -> None:
    """Rows carry the documented field names (puzzel-api.md section 4)."""
    token = await served.login()
    info = (await (await served.get("/accesstokeninformation", token)).json())["result"]
    assert set(info) == {
        "customerKey",
        "customerId",
        "userGroupId",
        "userId",
        "languageId",
        "languageCode",
        "passwordValidDaysLeft",
        "accessTokenExpiry",
    }
    assert ISO_Z.match(info["accessTokenExpiry"])
    vq = (await (await served.get(f"/{served.key}/visualqueues", token)).json())["result"][0]
    assert set(vq) == {"id", "description", "queues"}
    assert set(vq["queues"][0]) == {"id", "key", "description", "serviceId"}
    state = (
        await (await served.get(f"/{served.key}/visualqueues/stateinformation/All", token)).json()
    )["result"][0]
    for name in ("queueSize", "waitTimeMaxSeconds", "agentsReady", "callsOfferedToday", "sla"):
        assert name in state
    row = (await (await served.get(f"/{served.key}/users/stateinformation/Today", token)).json())[
        "result"
    ][0]
    assert set(row) == {
        "userId",
        "firstName",
        "lastName",
        "userGroupName",
        "contactCentreStatus",
        "userStatus",
        "pauseTypeId",
        "callsOffered",
        "callsAnswered",
    }


async def test_group_state_matches_ground_truth_with_pause_type_ids(served: Served) -> None:
    """User-group state rows report each agent's true state; paused agents carry pauseTypeId."""
    token = await served.login()
    served.clock.advance(1800)
    r = await served.get(f"/{served.key}/users/stateinformation/Today", token, userId="100001")
    rows = (await r.json())["result"]
    truth = served.sim.agent_states()
    pause_ids = dict(served.sim.centre.pause_types())
    assert len(rows) == len(truth) == 40
    paused = 0
    for row in rows:
        state, _ = truth[str(row["userId"])]
        assert (row["contactCentreStatus"], row["userStatus"]) == state.to_puzzel()
        if state.kind is StateKind.PAUSE:
            paused += 1
            assert row["pauseTypeId"] == pause_ids[state.pause_type or ""]
        else:
            assert row["pauseTypeId"] == 0
    assert any(row["contactCentreStatus"] == "LoggedOn" for row in rows)
    assert paused > 0


async def test_user_group_name_filter(served: Served) -> None:
    """userGroupName keeps only that group's agents (any case), and the request log records it."""
    token = await served.login()
    r = await served.get(
        f"/{served.key}/users/stateinformation/Today", token, userGroupName="sales"
    )
    rows = (await r.json())["result"]
    expected = [u.id for u in served.sim.centre.users() if u.group_name == "Sales"]
    assert [row["userId"] for row in rows] == expected
    assert {row["userGroupName"] for row in rows} == {"Sales"}
    assert served.sim.requests[-1].user_group_name == "sales"
    empty = await served.get(
        f"/{served.key}/users/stateinformation/Today", token, userGroupName="Nobody"
    )
    assert (await empty.json())["result"] == []


async def test_visual_queue_filter_and_unknown_window(served: Served) -> None:
    """visualQueueId selects one queue; an unknown ticker window is a 400 in the envelope."""
    token = await served.login()
    r = await served.get(
        f"/{served.key}/visualqueues/stateinformation/All", token, visualQueueId="4102"
    )
    assert [q["id"] for q in (await r.json())["result"]] == [4102]
    bad = await served.get(f"/{served.key}/users/stateinformation/ThisWeek", token)
    assert bad.status == 400
    assert (await bad.json())["code"] != 0


async def test_thousand_agents_in_one_call(serve: ServeFactory) -> None:
    """With 1000 agents and no group filter, one group-state call returns all 1000."""
    clock = VirtualClock(START)
    served = await serve(Simulator.random(agents=1000, groups=5, clock=clock), clock)
    token = await served.login()
    r = await served.get(f"/{served.key}/users/stateinformation/Today", token)
    rows = (await r.json())["result"]
    assert len(rows) == 1000
    assert len({row["userGroupName"] for row in rows}) == 5


async def test_missing_revoked_and_expired_tokens_get_401(served: Served) -> None:
    """No token, a revoked token and an expired token each get 401 with an envelope-ish body."""
    path = f"/{served.key}/usergroups"
    r = await served.get(path, None)
    assert r.status == 401
    assert (await r.json())["code"] == 401

    token = await served.login()
    assert (await served.get(path, token)).status == 200
    assert served.sim.revoke_tokens() >= 1
    r = await served.get(path, token)
    assert r.status == 401
    assert "revoked" in (await r.json())["message"]

    served.sim.faults.token_ttl = timedelta(minutes=10)
    token = await served.login()
    served.clock.advance(9 * 60)
    assert (await served.get(path, token)).status == 200
    served.clock.advance(61)
    r = await served.get(path, token)
    assert r.status == 401
    assert "expired" in (await r.json())["message"]


async def test_token_for_another_customer_key_is_forbidden(served: Served) -> None:
    """A path with a customer key the token was not issued for is a 403."""
    token = await served.login()
    r = await served.get("/99999/usergroups", token)
    assert r.status == 403
    assert (await r.json())["code"] == 403


async def test_429_burst_with_retry_after(served: Served) -> None:
    """throttle(N, S): the next N API requests get 429 with Retry-After: S, then service resumes."""
    token = await served.login()
    served.sim.faults.throttle(2, retry_after=7)
    path = f"/{served.key}/usergroups"
    for _ in range(2):
        r = await served.get(path, token)
        assert r.status == 429
        assert r.headers["Retry-After"] == "7"
        assert (await r.json())["code"] == 429
    assert (await served.get(path, token)).status == 200
    assert [rec.status for rec in served.sim.requests_for("user_groups")] == [429, 429, 200]


async def test_5xx_rate_is_seeded_and_partial(serve: ServeFactory) -> None:
    """A 5xx rate of 0.5 fails some requests and not others, identically for the same seed."""
    runs = []
    for _ in range(2):
        clock = VirtualClock(START)
        sim = Simulator.random(agents=5, clock=clock, faults=Faults(error_rate=0.5, seed=3))
        served = await serve(sim, clock)
        token = await served.login()
        statuses = [
            (await served.get(f"/{served.key}/usergroups", token)).status for _ in range(30)
        ]
        runs.append(statuses)
    assert runs[0] == runs[1]
    assert 200 in runs[0]
    assert {s for s in runs[0] if s != 200} <= {500, 502, 503}
    assert any(s >= 500 for s in runs[0])


async def test_malformed_json_rate(served: Served) -> None:
    """With a malformed rate of 1, API bodies are cut short and do not parse as JSON."""
    token = await served.login()
    served.sim.faults.malformed_rate = 1.0
    r = await served.get(f"/{served.key}/usergroups", token)
    assert r.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(await r.text())
    served.sim.faults.malformed_rate = 0.0
    assert (await (await served.get(f"/{served.key}/usergroups", token)).json())["code"] == 0


async def test_legacy_dates_for_token_expiry_and_session_time(served: Served) -> None:
    """legacy_dates serves accessTokenExpiry and sessionTime as /Date(ms+0000)/."""
    served.sim.faults.legacy_dates = True
    token = await served.login()
    info = (await (await served.get("/accesstokeninformation", token)).json())["result"]
    m = MS_DATE.match(info["accessTokenExpiry"])
    assert m is not None
    expected_ms = (START + served.sim.faults.token_ttl).timestamp() * 1000
    assert int(m.group(1)) == expected_ms
    on = next(aid for aid, (s, _) in served.sim.agent_states().items() if s.logged_on)
    user = (await (await served.get(f"/{served.key}/users/{on}", token)).json())["result"]
    assert MS_DATE.match(user["sessionTime"])
    served.sim.faults.legacy_dates = False
    user = (await (await served.get(f"/{served.key}/users/{on}", token)).json())["result"]
    assert ISO_Z.match(user["sessionTime"])


async def test_stalled_response_exceeds_a_client_timeout(served: Served) -> None:
    """stall(1, s) holds the next response long enough for a short client timeout to fire."""
    token = await served.login()
    served.sim.faults.stall(1, 0.5)
    with pytest.raises(asyncio.TimeoutError):
        await served.http.get(
            f"{served.api}/{served.key}/usergroups",
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    assert (await served.get(f"/{served.key}/usergroups", token)).status == 200


async def test_unknown_path_and_unknown_user(served: Served) -> None:
    """Unknown resources are 404s in the envelope with a non-zero code."""
    token = await served.login()
    r = await served.get(f"/{served.key}/nothing/here", token)
    assert r.status == 404
    r = await served.get(f"/{served.key}/users/1", token)
    assert r.status == 404
    assert (await r.json())["code"] == 404
