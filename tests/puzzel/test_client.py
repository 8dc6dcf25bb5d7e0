"""PuzzelClient against a tiny in-test Puzzel over real HTTP, sleeping on a virtual clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from monitor.core.clock import VirtualClock
from monitor.puzzel import (
    PasswordCredentials,
    PuzzelApiError,
    PuzzelAuthError,
    PuzzelClient,
    PuzzelDeadlineExceeded,
    PuzzelIdCredentials,
    PuzzelMalformedResponse,
    PuzzelNotFound,
    PuzzelRateLimited,
    PuzzelTimeout,
    PuzzelTransportError,
)
from tests.puzzel import fake_puzzel as fp

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

MakeClient = Callable[..., Awaitable[PuzzelClient]]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def fake(clock: VirtualClock) -> fp.FakePuzzel:
    return fp.FakePuzzel(clock)


def oidc_credentials() -> PuzzelIdCredentials:
    return PuzzelIdCredentials(
        client_id=fp.CLIENT_ID,
        client_secret=fp.CLIENT_SECRET,
        customer_key=fp.CUSTOMER_KEY,
        user_id=fp.API_USER_ID,
    )


def password_credentials() -> PasswordCredentials:
    return PasswordCredentials(
        customer_key=fp.CUSTOMER_KEY, user_name=fp.USER_NAME, password=fp.PASSWORD
    )


@pytest.fixture
async def make_client(
    aiohttp_server: Any, fake: fp.FakePuzzel, clock: VirtualClock
) -> AsyncIterator[MakeClient]:
    server: TestServer = await aiohttp_server(fake.app())
    base = f"http://127.0.0.1:{server.port}"
    clients: list[PuzzelClient] = []

    async def make(auth: Any = None, **kwargs: Any) -> PuzzelClient:
        options: dict[str, Any] = {
            "api_base_url": f"{base}/ContactCentre5",
            "auth_base_url": f"{base}/auth",
            "id_base_url": base,
            "clock": clock,
            "rng": random.Random(7),
            "max_rate": 1000.0,
            "burst": 1000,
        }
        options.update(kwargs)
        client = PuzzelClient(auth or oidc_credentials(), **options)
        clients.append(client)
        return await client.__aenter__()

    yield make
    for c in clients:
        await c.close()


ENDPOINT_CALLS: list[tuple[str, Callable[[PuzzelClient], Awaitable[Any]], str]] = [
    ("access_token_information", lambda c: c.access_token_information(), "customer_key"),
    ("visual_queues", lambda c: c.visual_queues(), "queues"),
    ("visual_queue_state_information", lambda c: c.visual_queue_state_information(), "sla"),
    (
        "user_group_state_information",
        lambda c: c.user_group_state_information(user_group_name="Support"),
        "user_status",
    ),
    ("user", lambda c: c.user(158888), "profiles"),
    ("users", lambda c: c.users(), "group_id"),
    ("user_groups", lambda c: c.user_groups(), "name"),
    ("queues", lambda c: c.queues(), "key"),
    (
        "user_state_information",
        lambda c: c.user_state_information(158889),
        "status_duration_seconds",
    ),
    ("agent_stats", lambda c: c.agent_stats(), "overview"),
    ("visual_queue_ticker", lambda c: c.visual_queue_ticker(), "calls_offered"),
    ("access_point_tickers", lambda c: c.access_point_tickers(), "accesspoint"),
    ("pause_types", lambda c: c.pause_types(), "description"),
]


@pytest.mark.parametrize("case", ENDPOINT_CALLS, ids=[e[0] for e in ENDPOINT_CALLS])
@pytest.mark.parametrize("flow", ["puzzel_id", "password"])
async def test_every_endpoint_returns_its_model(
    make_client: MakeClient,
    fake: fp.FakePuzzel,
    case: tuple[str, Callable[[PuzzelClient], Awaitable[Any]], str],
    flow: str,
) -> None:
    """Each typed method hits its table path with a bearer token and returns parsed models."""
    name, call, attr = case
    client = await make_client(
        oidc_credentials() if flow == "puzzel_id" else password_credentials()
    )
    got = await call(client)
    row = got[0] if isinstance(got, list) else got
    assert hasattr(row, attr)
    seen = fake.requests_to(name)[-1]
    assert seen.authorization is not None
    assert seen.authorization.startswith("Bearer tok-")
    assert seen.method == "GET"


async def test_user_id_and_filters_go_in_the_query(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """4.2/4.3 send the API user's userId plus the optional filters; the window is in the path."""
    client = await make_client()
    await client.visual_queue_state_information(visual_queue_id=4101)
    await client.user_group_state_information(user_group_name="Kundeservice Øst")
    vq = fake.requests_to("visual_queue_state_information")[0]
    ug = fake.requests_to("user_group_state_information")[0]
    assert vq.path == f"/ContactCentre5/{fp.CUSTOMER_KEY}/visualqueues/stateinformation/All"
    assert vq.query == {"userId": str(fp.API_USER_ID), "visualQueueId": "4101"}
    assert ug.path.endswith("/users/stateinformation/Today")
    assert ug.query == {"userId": str(fp.API_USER_ID), "userGroupName": "Kundeservice Øst"}


async def test_puzzel_id_token_is_reused_until_near_expiry(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """One token serves many calls; a new one is fetched within the skew before expires_in."""
    fake.token_ttl = 600
    client = await make_client()
    for _ in range(5):
        await client.user_groups()
    assert len(fake.requests_to("oidc_token")) == 1
    clock.advance(600 - 60 - 1)
    await client.user_groups()
    assert len(fake.requests_to("oidc_token")) == 1
    clock.advance(2)
    await client.user_groups()
    assert len(fake.requests_to("oidc_token")) == 2
    form = fake.requests_to("oidc_token")[0].body.decode()
    assert "grant_type=client_credentials" in form
    assert f"scope=contact-centre%3A{fp.CUSTOMER_KEY}%3A{fp.API_USER_ID}" in form


async def test_puzzel_id_without_expires_in_asks_token_information(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """Without expires_in the expiry comes from /accesstokeninformation."""
    fake.send_expires_in = False
    fake.token_ttl = 300
    client = await make_client()
    await client.user_groups()
    assert len(fake.requests_to("access_token_information")) == 1
    clock.advance(300 - 60 + 1)
    await client.user_groups()
    assert len(fake.requests_to("oidc_token")) == 2


async def test_password_flow_logs_in_learns_user_and_refreshes(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """LogIn once, learn userId from token info, then GetAccessToken (not LogIn) at expiry."""
    fake.token_ttl = 900
    client = await make_client(password_credentials())
    await client.visual_queue_state_information()
    assert client.auth.user_id == fp.API_USER_ID
    assert fake.requests_to("visual_queue_state_information")[0].query["userId"] == str(
        fp.API_USER_ID
    )
    clock.advance(900)
    await client.users()
    assert len(fake.requests_to("login")) == 1
    refresh = fake.requests_to("get_access_token")
    assert len(refresh) == 1
    assert b'"sessionId":"session-' in refresh[0].body
    assert (
        fake.requests_to("users")[0].authorization
        != fake.requests_to("visual_queue_state_information")[0].authorization
    )


async def test_password_refresh_accepts_object_body(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """GetAccessToken answering {accessToken: ...} works as well as a bare string."""
    fake.refresh_body = "object"
    client = await make_client(password_credentials())
    await client.users()
    clock.advance(3600)
    await client.users()
    assert len(fake.requests_to("get_access_token")) == 1
    assert len(fake.requests_to("login")) == 1


async def test_refused_session_falls_back_to_login(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """When the LogIn session is gone, the provider logs in again."""
    client = await make_client(password_credentials())
    await client.users()
    fake.sessions.clear()
    clock.advance(3600)
    await client.users()
    assert len(fake.requests_to("get_access_token")) == 1
    assert len(fake.requests_to("login")) == 2


async def test_401_reauthenticates_once_and_retries(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """A revoked token gets one new token and one retry, transparently."""
    client = await make_client()
    await client.user_groups()
    fake.revoke_tokens()
    groups = await client.user_groups()
    assert groups[0].name == "Support"
    assert len(fake.requests_to("oidc_token")) == 2
    assert client.stats.of("user_groups").retries == 1


@pytest.mark.parametrize("code", [401, 403])
async def test_second_refusal_is_an_auth_error(
    make_client: MakeClient, fake: fp.FakePuzzel, code: int
) -> None:
    """If the fresh token is refused too, PuzzelAuthError (HTTP status kept), no third try."""
    fake.fail("users", fp.status(code, {"code": code}), fp.status(code, {"code": code}))
    client = await make_client()
    with pytest.raises(PuzzelAuthError) as err:
        await client.users()
    assert err.value.http_status == code
    assert len(fake.requests_to("users")) == 2


async def test_bad_client_secret_is_an_auth_error(make_client: MakeClient) -> None:
    """Puzzel ID refusing the client gives PuzzelAuthError, not retried."""
    creds = PuzzelIdCredentials.model_validate(
        {**oidc_credentials().model_dump(), "client_secret": "wrong"}
    )
    client = await make_client(creds)
    with pytest.raises(PuzzelAuthError, match="invalid_client"):
        await client.users()
    assert client.stats.of("oidc_token").requests == 1


async def test_bad_password_is_an_auth_error(make_client: MakeClient) -> None:
    """LogIn refusing the password gives PuzzelAuthError with Puzzel's message."""
    creds = PasswordCredentials.model_validate(
        {**password_credentials().model_dump(), "password": "nope"}
    )
    client = await make_client(creds)
    with pytest.raises(PuzzelAuthError, match="Invalid credentials"):
        await client.users()


async def test_two_factor_accounts_are_refused_clearly(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """A LogIn answer demanding two-factor auth is an auth error that says so."""
    fake.fail("login", fp.status(200, {"twoFactorRequired": True, "accessToken": None}))
    client = await make_client(password_credentials())
    with pytest.raises(PuzzelAuthError, match="two-factor"):
        await client.users()


async def test_429_waits_retry_after_seconds(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """429 with Retry-After: 7 waits 7 s on the clock, then succeeds."""
    client = await make_client()
    await client.user_groups()
    fake.fail("user_groups", fp.status(429, {"code": 429}, {"Retry-After": "7"}))
    before = clock.monotonic()
    await client.user_groups()
    assert clock.monotonic() - before == pytest.approx(7.0)
    stats = client.stats.of("user_groups")
    assert (stats.rate_limited, stats.retries, stats.requests) == (1, 1, 3)
    assert fake.requests_to("user_groups")[-1].at - fake.requests_to("user_groups")[-2].at >= 7.0


async def test_429_retry_after_http_date(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """Retry-After as an HTTP date waits until that instant."""
    client = await make_client()
    await client.user_groups()
    when = format_datetime(clock.now() + timedelta(seconds=12), usegmt=True)
    fake.fail("user_groups", fp.status(429, None, {"Retry-After": when}))
    before = clock.monotonic()
    await client.user_groups()
    assert clock.monotonic() - before == pytest.approx(12.0, abs=1.0)


async def test_429_beyond_deadline_raises_rate_limited_without_waiting(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """A Retry-After longer than the deadline raises PuzzelRateLimited at once."""
    client = await make_client(deadline=30.0)
    fake.fail("users", fp.status(429, None, {"Retry-After": "120"}))
    before = clock.monotonic()
    with pytest.raises(PuzzelRateLimited) as err:
        await client.users()
    assert err.value.retry_after == 120
    assert clock.monotonic() - before < 1.0


async def test_5xx_is_retried_with_backoff(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """Two 503s then success: three requests, growing jittered gaps, result returned."""
    client = await make_client(retry_base=1.0)
    await client.queues()
    fake.fail("queues", fp.status(503), fp.status(502))
    got = await client.queues()
    assert got[0].key == "q_support_no"
    times = [s.at for s in fake.requests_to("queues")[1:]]
    assert 0.5 <= times[1] - times[0] <= 1.0  # attempt 1: half of 1 s jittered
    assert 1.0 <= times[2] - times[1] <= 2.0  # attempt 2: half of 2 s jittered
    assert client.stats.of("queues").retries == 2
    assert client.stats.of("queues").failures == 2


async def test_persistent_5xx_ends_at_the_deadline(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """Always 500: PuzzelDeadlineExceeded within the deadline, naming the last error."""
    client = await make_client(deadline=10.0, retry_base=0.5, retry_max_delay=2.0)
    await client.queues()
    fake.fail("queues", *[fp.status(500, {"code": 500, "message": "boom"})] * 50)
    before = clock.monotonic()
    with pytest.raises(PuzzelDeadlineExceeded) as err:
        await client.queues()
    assert clock.monotonic() - before <= 10.0
    assert isinstance(err.value.last_error, PuzzelApiError)
    assert err.value.last_error.http_status == 500
    assert "boom" in str(err.value)
    assert len(fake.requests_to("queues")) > 3
    assert client.stats.of("queues").call_failures == 1


async def test_other_4xx_is_not_retried(make_client: MakeClient, fake: fp.FakePuzzel) -> None:
    """A 404 with an envelope is PuzzelApiError with Puzzel's code and message, sent once."""
    fake.fail("user", fp.status(404, {"result": None, "code": 17, "message": "No such user"}))
    client = await make_client()
    with pytest.raises(PuzzelApiError) as err:
        await client.user(1)
    assert (err.value.code, err.value.http_status, err.value.message) == (17, 404, "No such user")
    assert len(fake.requests_to("user")) == 1


async def test_nonzero_code_in_200_is_an_api_error(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """HTTP 200 with code != 0 raises PuzzelApiError and is not retried."""
    fake.fail(
        "users", fp.raw('{"result": null, "code": 3, "id": "", "message": "Invalid customerKey"}')
    )
    client = await make_client()
    with pytest.raises(PuzzelApiError, match="Invalid customerKey") as err:
        await client.users()
    assert (err.value.code, err.value.http_status) == (3, 200)
    assert len(fake.requests_to("users")) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        ('"just a string"', "body"),
        ('{"result": {"id": 1, "name": "x"}, "code": 0}', "result"),
    ],
    ids=["bad-json", "not-an-object", "object-not-list"],
)
async def test_malformed_bodies_name_endpoint_and_field(
    make_client: MakeClient, fake: fp.FakePuzzel, body: str, field: str
) -> None:
    """Bad JSON, a body that is neither envelope nor array, or a result of the wrong shape raise
    PuzzelMalformedResponse."""
    fake.fail("user_groups", fp.raw(body))
    client = await make_client()
    with pytest.raises(PuzzelMalformedResponse) as err:
        await client.user_groups()
    assert err.value.field == field
    assert err.value.endpoint == "user_groups"
    assert client.stats.of("user_groups").failures == 1


@pytest.mark.parametrize(
    "body",
    [
        '[{"id": 1, "name": "Support"}]',
        '{"result": [{"id": 1, "name": "Support"}], "code": 0}',
        '{"result": [{"id": 1, "name": "Support"}], "code": "0"}',
        '{"result": [{"id": 1, "name": "Support"}]}',
    ],
    ids=["bare-array", "result-and-code", "code-as-string", "no-code"],
)
async def test_tolerated_envelopes(make_client: MakeClient, fake: fp.FakePuzzel, body: str) -> None:
    """A bare array, an envelope of only result and code, or a 200 without a code all parse."""
    fake.fail("user_groups", fp.raw(body))
    client = await make_client()
    groups = await client.user_groups()
    assert [(g.id, g.name) for g in groups] == [(1, "Support")]
    assert client.stats.of("user_groups").failures == 0


async def test_one_bad_row_in_a_thousand_is_dropped_and_counted(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """999 good agent rows and one without a userId: 999 rows, one rejection counted by field,
    one warning; the next call with the same bad row does not log again."""
    rows: list[dict[str, object]] = [
        {"userId": i, "firstName": None, "contactCentreStatus": "LoggedOn", "callsOffered": "3"}
        for i in range(1000)
    ]
    del rows[500]["userId"]
    body = orjson.dumps({"result": rows, "code": 0}).decode()
    fake.fail("user_group_state_information", fp.raw(body), fp.raw(body))
    client = await make_client()
    with capture_logs() as logs:
        first = await client.user_group_state_information("Today")
        again = await client.user_group_state_information("Today")
    assert len(first) == 999
    assert 500 not in {r.user_id for r in first}
    assert first[0].first_name is None
    assert first[0].calls_offered == 3
    assert len(again) == 999
    warnings = [e for e in logs if e["event"] == "puzzel rows rejected"]
    assert [(w["endpoint"], w["field"], w["rows"]) for w in warnings] == [
        ("user_group_state_information", "userId", 1)
    ]
    assert client.stats.of("user_group_state_information").rejected == {"userId": 2}
    assert client.stats.of("user_group_state_information").failures == 0


async def test_not_found_is_typed_and_not_retried(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """404 and 405 raise PuzzelNotFound at once: the tenant lacks the endpoint."""
    fake.fail("pause_types", fp.status(404))
    client = await make_client()
    with pytest.raises(PuzzelNotFound) as err:
        await client.pause_types()
    assert err.value.http_status == 404
    assert len(fake.requests_to("pause_types")) == 1


async def test_timeouts_are_retried_then_typed(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """A too-slow answer is a timeout; one slow answer is retried, endless ones end typed."""
    client = await make_client(timeout=0.05, deadline=3.0, retry_base=0.5)
    fake.fail("pause_types", fp.slow(0.5))
    assert [p.id for p in await client.pause_types()] == [4812, 4813, 4814]
    fake.fail("pause_types", *[fp.slow(0.5)] * 20)
    with pytest.raises(PuzzelDeadlineExceeded) as err:
        await client.pause_types()
    assert isinstance(err.value.last_error, PuzzelTimeout)


async def test_connection_refused_is_a_transport_error(clock: VirtualClock) -> None:
    """Nothing listening: retried until the deadline, last error a PuzzelTransportError."""
    client = PuzzelClient(
        oidc_credentials(),
        id_base_url="http://127.0.0.1:9",
        api_base_url="http://127.0.0.1:9/ContactCentre5",
        clock=clock,
        deadline=2.0,
        rng=random.Random(1),
    )
    async with client:
        with pytest.raises(PuzzelDeadlineExceeded) as err:
            await client.users()
    assert isinstance(err.value.last_error, PuzzelTransportError)
    assert not isinstance(err.value.last_error, PuzzelTimeout)


async def test_client_rate_limit_spaces_requests(
    make_client: MakeClient, fake: fp.FakePuzzel, clock: VirtualClock
) -> None:
    """With max_rate=5 and burst=2, 12 calls reach the server no faster than 2 + 5/s."""
    client = await make_client(max_rate=5.0, burst=2)
    for _ in range(12):
        await client.user_groups()
    times = sorted(s.at for s in fake.seen)
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[i:] if u < t + 1.0)
        assert in_window <= 2 + 5
    assert times[-1] - times[0] >= (len(times) - 2) / 5.0 - 1e-6


async def test_given_session_is_not_closed(aiohttp_server: Any, fake: fp.FakePuzzel) -> None:
    """The client closes only sessions it created."""
    async with aiohttp.ClientSession() as session:
        async with PuzzelClient(oidc_credentials(), session=session):
            pass
        assert not session.closed
        own = PuzzelClient(oidc_credentials())
        async with own:
            created = own._get_session()
        assert created.closed


def test_reprs_hide_secrets() -> None:
    """Credentials, providers and clients never show secrets in repr or str."""
    client = PuzzelClient(oidc_credentials())
    pw = password_credentials()
    text = " ".join([repr(client), repr(client.auth), repr(oidc_credentials()), str(pw), repr(pw)])
    assert fp.CLIENT_SECRET not in text
    assert fp.PASSWORD not in text
    assert fp.CUSTOMER_KEY in text


async def test_user_id_learned_from_token_information_for_custom_providers(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """api_user_id asks /accesstokeninformation when the credentials do not say."""
    client = await make_client(password_credentials())
    assert await client.api_user_id() == fp.API_USER_ID
    assert len(fake.requests_to("access_token_information")) == 1
    assert await client.api_user_id() == fp.API_USER_ID
    assert len(fake.requests_to("access_token_information")) == 1


async def test_null_result_for_a_list_endpoint_is_empty(
    make_client: MakeClient, fake: fp.FakePuzzel
) -> None:
    """A code-0 envelope with result null reads as an empty list for list endpoints."""
    fake.fail("user_groups", fp.raw('{"result": null, "code": 0, "id": 12, "message": null}'))
    client = await make_client()
    assert await client.user_groups() == []


async def test_stats_snapshot_and_total(make_client: MakeClient, fake: fp.FakePuzzel) -> None:
    """stats.snapshot() is a frozen copy; total() sums every endpoint."""
    client = await make_client()
    await client.users()
    snap = client.stats.snapshot()
    await client.users()
    assert snap["users"].requests == 1
    assert client.stats.of("users").requests == 2
    total = client.stats.total()
    assert total.requests == sum(s.requests for s in client.stats.endpoints.values())
    assert total.calls == client.stats.of("users").calls + client.stats.of("oidc_token").calls
