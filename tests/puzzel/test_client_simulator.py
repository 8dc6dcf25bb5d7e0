"""PuzzelClient against the project's simulator (monitor.simulator) over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from monitor.core.clock import Clock, SystemClock, VirtualClock
from monitor.puzzel import (
    PasswordCredentials,
    PuzzelAuthError,
    PuzzelClient,
    PuzzelDeadlineExceeded,
    PuzzelError,
    PuzzelIdCredentials,
    PuzzelMalformedResponse,
    PuzzelTimeout,
)
from monitor.puzzel.endpoints import ENDPOINTS
from monitor.simulator import Faults, Simulator
from monitor.simulator.app import base_urls, create_app
from monitor.simulator.simulator import RequestRecord

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

MakeClient = Callable[..., Awaitable[PuzzelClient]]


class Env:
    """A served simulator and a factory of clients pointed at it."""

    def __init__(self, sim: Simulator, server: TestServer, clock: Clock) -> None:
        self.sim = sim
        self.server = server
        self.clock = clock
        self.urls = base_urls(f"http://127.0.0.1:{server.port}")
        self.clients: list[PuzzelClient] = []

    def credentials(self, flow: str) -> PuzzelIdCredentials | PasswordCredentials:
        c = self.sim.credentials
        if flow == "puzzel_id":
            return PuzzelIdCredentials(
                client_id=c.client_id,
                client_secret=c.client_secret,
                customer_key=c.customer_key,
                user_id=c.user_id,
            )
        return PasswordCredentials(
            customer_key=c.customer_key, user_name=c.user_name, password=c.password
        )

    async def client(self, flow: str = "puzzel_id", **kwargs: Any) -> PuzzelClient:
        options: dict[str, Any] = {
            "api_base_url": self.urls["api"],
            "auth_base_url": self.urls["auth"],
            "id_base_url": self.urls["id"],
            "clock": self.clock,
            "rng": random.Random(3),
        }
        options.update(kwargs)
        client = PuzzelClient(self.credentials(flow), **options)
        self.clients.append(client)
        return await client.__aenter__()


async def _serve(aiohttp_server: Any, clock: Clock, seed: int = 5) -> AsyncIterator[Env]:
    sim = Simulator.random(agents=12, groups=2, queues=2, clock=clock, faults=Faults(seed=seed))
    server = await aiohttp_server(create_app(sim))
    env = Env(sim, server, clock)
    yield env
    for c in env.clients:
        await c.close()


@pytest.fixture
async def env(aiohttp_server: Any) -> AsyncIterator[Env]:
    """A simulator on a virtual clock shared with the clients."""
    async for e in _serve(aiohttp_server, VirtualClock(START)):
        yield e


@pytest.fixture
async def real_env(aiohttp_server: Any) -> AsyncIterator[Env]:
    """A simulator on the system clock (for concurrency in real time)."""
    async for e in _serve(aiohttp_server, SystemClock()):
        yield e


def statuses(sim: Simulator, endpoint: str) -> list[int]:
    return [r.status for r in sim.requests_for(endpoint)]


def max_in_window(records: list[RequestRecord], window: float) -> int:
    """The most requests the simulator saw in any half-open window [t, t + window)."""
    times = sorted(r.monotonic for r in records)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize("flow", ["puzzel_id", "password"])
async def test_every_endpoint_against_the_simulator(env: Env, flow: str) -> None:
    """Every typed method parses the simulator's answer and matches its ground truth."""
    client = await env.client(flow)
    centre = env.sim.centre
    info = await client.access_token_information()
    assert (info.customer_key, info.user_id) == (env.sim.customer_key, env.sim.credentials.user_id)
    vqs = await client.visual_queues()
    assert [v.id for v in vqs] == [v.id for v in centre.visual_queues()]
    states = await client.visual_queue_state_information()
    assert {s.id for s in states} == {v.id for v in vqs}
    one = await client.visual_queue_state_information(visual_queue_id=int(vqs[0].id))
    assert [s.id for s in one] == [vqs[0].id]
    groups = await client.user_groups()
    assert [g.name for g in groups] == [g.name for g in centre.user_groups()]
    rows = await client.user_group_state_information(user_group_name=groups[0].name)
    assert rows
    assert {r.user_group_name for r in rows} == {groups[0].name}
    truth = env.sim.agent_states()
    for r in rows:
        assert (r.contact_centre_status, r.user_status) == truth[str(r.user_id)][0].to_puzzel()
    user = await client.user(rows[0].user_id)
    assert (user.first_name, user.last_name) == (rows[0].first_name, rows[0].last_name)
    users = await client.users()
    assert len(users) == len(centre.users())
    queues = await client.queues()
    assert {q.id for q in queues} == {q.id for v in vqs for q in v.queues}
    usi = await client.user_state_information(rows[0].user_id)
    assert usi.status_duration_seconds >= 0
    stats = await client.agent_stats()
    assert {s.user_id for s in stats} == {u.id for u in users}
    ticker = await client.visual_queue_ticker()
    assert {t.id for t in ticker} == {v.id for v in vqs}
    aps = await client.access_point_tickers()
    assert aps
    assert all(a.accesspoint for a in aps)
    pauses = await client.pause_types()
    assert {p.description: p.id for p in pauses} == dict(centre.pause_types())
    served = {r.endpoint for r in env.sim.requests if r.status == 200}
    api_endpoints = {n for n, e in ENDPOINTS.items() if e.host == "api"}
    assert api_endpoints <= served
    assert ("oidc_token" if flow == "puzzel_id" else "login") in served


async def test_puzzel_id_token_refreshed_before_expiry(env: Env) -> None:
    """A Puzzel ID token is reused, then replaced shortly before it expires: no 401 on the way."""
    env.sim.faults.token_ttl = timedelta(minutes=5)
    client = await env.client("puzzel_id")
    await client.users()
    await client.users()
    assert len(env.sim.requests_for("oidc_token")) == 1
    assert isinstance(env.clock, VirtualClock)
    env.clock.advance(5 * 60 - 30)  # inside the 60 s skew
    await client.users()
    assert len(env.sim.requests_for("oidc_token")) == 2
    assert 401 not in statuses(env.sim, "users")


async def test_password_token_refreshed_with_session(env: Env) -> None:
    """LogIn once; at expiry GetAccessToken (a bare JSON string) gives the next token."""
    env.sim.faults.token_ttl = timedelta(minutes=5)
    client = await env.client("password")
    await client.user_groups()
    assert isinstance(env.clock, VirtualClock)
    env.clock.advance(5 * 60)
    await client.user_groups()
    assert statuses(env.sim, "login") == [200]
    assert statuses(env.sim, "get_access_token") == [200]
    assert 401 not in statuses(env.sim, "user_groups")


@pytest.mark.parametrize("flow", ["puzzel_id", "password"])
async def test_revoked_token_reauthenticates_once(env: Env, flow: str) -> None:
    """After the simulator revokes every token, the next call sees one 401, re-auths, succeeds."""
    client = await env.client(flow)
    await client.user_groups()
    env.sim.revoke_tokens(sessions=True)
    groups = await client.user_groups()
    assert groups
    assert statuses(env.sim, "user_groups") == [200, 401, 200]
    if flow == "password":
        assert statuses(env.sim, "get_access_token") == [401]  # session gone: log in again
        assert statuses(env.sim, "login") == [200, 200]
    else:
        assert statuses(env.sim, "oidc_token") == [200, 200]


async def test_wrong_secret_is_an_auth_error(env: Env) -> None:
    """A client secret the simulator does not know ends in PuzzelAuthError, sent once."""
    c = env.sim.credentials
    creds = PuzzelIdCredentials(
        client_id=c.client_id, client_secret="nope", customer_key=c.customer_key, user_id=c.user_id
    )
    client = PuzzelClient(
        creds, api_base_url=env.urls["api"], id_base_url=env.urls["id"], clock=env.clock
    )
    async with client:
        with pytest.raises(PuzzelAuthError, match="invalid_client"):
            await client.users()
    assert statuses(env.sim, "oidc_token") == [401]


async def test_429_burst_waits_retry_after(env: Env) -> None:
    """Two 429s with Retry-After: 3 make the call wait ~6 s on the clock, then it succeeds."""
    client = await env.client()
    await client.user_groups()
    env.sim.faults.throttle(2, retry_after=3)
    before = env.clock.monotonic()
    assert await client.user_groups()
    assert env.clock.monotonic() - before >= 6.0
    assert statuses(env.sim, "user_groups") == [200, 429, 429, 200]
    gaps = [r.monotonic for r in env.sim.requests_for("user_groups")[1:]]
    assert gaps[1] - gaps[0] >= 3.0
    assert gaps[2] - gaps[1] >= 3.0
    assert client.stats.of("user_groups").rate_limited == 2


async def test_5xx_retried_until_success_or_deadline(env: Env) -> None:
    """Always-5xx ends in PuzzelDeadlineExceeded; a 50% error rate still gets every call through."""
    short = await env.client(deadline=5.0)
    await short.queues()
    env.sim.faults.error_rate = 1.0
    before = env.clock.monotonic()
    with pytest.raises(PuzzelDeadlineExceeded) as err:
        await short.queues()
    assert env.clock.monotonic() - before <= 5.0
    assert err.value.last_error is not None
    assert "HTTP 5" in str(err.value.last_error)
    env.sim.faults.error_rate = 0.5
    patient = await env.client(deadline=60.0)
    for _ in range(10):
        assert await patient.queues()
    assert patient.stats.of("queues").retries > 0


async def test_stalled_answers_time_out_and_are_retried(env: Env) -> None:
    """A stall longer than the timeout is retried; endless stalls end typed as timeouts."""
    client = await env.client(timeout=0.1, deadline=2.0)
    await client.users()
    env.sim.faults.stall(1, 0.4)
    assert await client.users()
    assert client.stats.of("users").failures == 1
    env.sim.faults.stall(50, 0.4)
    with pytest.raises(PuzzelDeadlineExceeded) as err:
        await client.users()
    assert isinstance(err.value.last_error, PuzzelTimeout)
    env.sim.faults.clear()


async def test_malformed_body_is_typed(env: Env) -> None:
    """A cut-off JSON body is PuzzelMalformedResponse naming the endpoint, not retried."""
    client = await env.client()
    await client.pause_types()
    env.sim.faults.malformed_rate = 1.0
    with pytest.raises(PuzzelMalformedResponse) as err:
        await client.pause_types()
    assert err.value.endpoint == "pause_types"
    assert err.value.field == "body"
    assert len(env.sim.requests_for("pause_types")) == 2


async def test_legacy_dates_parse_to_the_same_instants(env: Env) -> None:
    """With /Date(ms)/ dates the token expiry and session time equal the ISO ones."""
    client = await env.client()
    rows = await client.user_group_state_information()
    logged_on = next(r for r in rows if r.contact_centre_status != "LoggedOff")
    iso_info = await client.access_token_information()
    iso_user = await client.user(logged_on.user_id)
    env.sim.faults.legacy_dates = True
    legacy_info = await client.access_token_information()
    legacy_user = await client.user(logged_on.user_id)
    assert legacy_info.access_token_expiry == iso_info.access_token_expiry
    assert legacy_user.session_time == iso_user.session_time
    assert legacy_user.session_time is not None
    assert legacy_user.session_time.tzinfo is UTC


async def test_200_calls_under_faults_end_typed_within_deadline_and_rate(env: Env) -> None:
    """20% 5xx plus 429 bursts: each of 200 calls succeeds or raises a PuzzelError within its
    deadline, and the simulator never sees more than burst + rate*T requests in any T."""
    rate, burst, deadline = 10.0, 10, 6.0
    client = await env.client(max_rate=rate, burst=burst, deadline=deadline)
    env.sim.faults.error_rate = 0.2
    calls = [
        client.users,
        client.user_groups,
        client.queues,
        client.pause_types,
        client.visual_queues,
    ]
    outcomes: list[str] = []
    for i in range(200):
        if i % 40 == 20:
            env.sim.faults.throttle(3, retry_after=1)
        start = env.clock.monotonic()
        try:
            await calls[i % len(calls)]()
            outcomes.append("ok")
        except PuzzelError as exc:
            outcomes.append(type(exc).__name__)
        assert env.clock.monotonic() - start <= deadline
    assert len(outcomes) == 200
    assert outcomes.count("ok") >= 150
    seen = env.sim.requests
    assert any(r.status >= 500 for r in seen)
    assert sum(r.status == 429 for r in seen) == 15
    for window in (0.5, 1.0, 2.0, 10.0):
        assert max_in_window(seen, window) <= burst + rate * window
    total = client.stats.total()
    assert total.requests == len(seen)
    assert total.retries > 0


async def test_concurrent_callers_share_the_rate_limit(real_env: Env) -> None:
    """Eight concurrent callers in real time stay within the rate, all ending typed."""
    rate, burst = 100.0, 5
    client = await real_env.client(
        max_rate=rate, burst=burst, retry_base=0.02, retry_max_delay=0.1, deadline=3.0
    )
    real_env.sim.faults.error_rate = 0.2

    async def worker() -> list[bool]:
        results = []
        for _ in range(12):
            try:
                await client.user_groups()
                results.append(True)
            except PuzzelError:
                results.append(False)
        return results

    results = [r for rs in await asyncio.gather(*(worker() for _ in range(8))) for r in rs]
    assert len(results) == 96
    assert sum(results) >= 80
    seen = real_env.sim.requests
    # Arrival times are admission times plus loopback latency, which varies by a few ms; allow
    # 30 ms of it. Without the limiter all 96+ requests would land within a few such windows.
    jitter = 0.03
    for window in (0.1, 0.5):
        assert max_in_window(seen, window) <= burst + rate * (window + jitter)


def _record_issued(env: Env) -> list[str]:
    """Every token and session id the simulator hands out, recorded as it is issued."""
    issued: list[str] = []
    store = env.sim.tokens
    original_issue, original_session = store.issue, store.open_session

    def issue(*args: Any, **kwargs: Any) -> Any:
        token = original_issue(*args, **kwargs)
        issued.append(token.token)
        return token

    def open_session(*args: Any, **kwargs: Any) -> Any:
        session = original_session(*args, **kwargs)
        issued.append(session.session_id)
        return session

    store.issue = issue  # type: ignore[method-assign]  # record what the simulator hands out
    store.open_session = open_session  # type: ignore[method-assign]
    return issued


async def _exercise_every_flow(env: Env, errors: list[str]) -> None:
    """Logins, a refresh, a 401 and errors in both auth flows, then refused credentials."""
    for flow in ("puzzel_id", "password"):
        client = await env.client(flow, deadline=3.0)
        await client.user_groups()
        assert isinstance(env.clock, VirtualClock)
        env.clock.advance(200)  # expiry -> refresh
        await client.users()
        env.sim.revoke_tokens()  # 401 -> re-auth
        await client.queues()
        env.sim.faults.error_rate = 1.0
        with pytest.raises(PuzzelError) as err:
            await client.pause_types()
        errors.append(str(err.value))
        env.sim.faults.error_rate = 0.0
    bad = PasswordCredentials(
        customer_key=env.sim.customer_key, user_name="api.monitor", password="wrong-pw-123"
    )
    async with PuzzelClient(bad, auth_base_url=env.urls["auth"], clock=env.clock) as c:
        with pytest.raises(PuzzelAuthError) as err:
            await c.users()
        errors.append(str(err.value))


async def test_no_secret_or_token_in_any_log_line(
    env: Env, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """At debug level, neither structlog events nor stdlib log lines contain a password,
    client secret, session id or token, across logins, refreshes, 401s and errors."""
    issued = _record_issued(env)
    env.sim.faults.token_ttl = timedelta(minutes=3)
    errors: list[str] = []

    async def exercise() -> None:
        await _exercise_every_flow(env, errors)

    saved = structlog.get_config()
    caplog.set_level(logging.DEBUG)
    try:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        with capture_logs() as events:
            await exercise()
        structlog.configure(
            processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        await exercise()
    finally:
        structlog.configure(**saved)
    out = capsys.readouterr()
    structlog_text = "\n".join(json.dumps(e, default=str) for e in events)
    stdlib_text = "\n".join(
        [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    )
    everything = "\n".join([structlog_text, stdlib_text, out.out, out.err, *errors])
    assert any(
        e.get("event") == "puzzel.response" and e.get("log_level") == "debug" for e in events
    )
    assert "puzzel.response" in stdlib_text
    assert len(issued) >= 8
    creds = env.sim.credentials
    secrets = [
        creds.password.get_secret_value(),
        creds.client_secret.get_secret_value(),
        "wrong-pw-123",
        *issued,
    ]
    for secret in secrets:
        assert secret not in everything
    for token in issued:
        assert token.split(".")[-1] not in everything  # not even the signature part
