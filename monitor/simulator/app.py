"""The simulator's HTTP face: Puzzel's auth flows and ContactCentre5 endpoints on one server.

Every route comes from `monitor.puzzel.endpoints.ENDPOINTS`, under a prefix per host:
the API under `/ContactCentre5`, the auth service (LogIn, GetAccessToken) under `/auth`, and
Puzzel ID's token endpoint at `/id/connect/token` (its template already carries `/id`). Paths
match case-insensitively, as Puzzel's do. API responses use the `{result, code, id, message}`
envelope; errors are 4xx/5xx with the envelope and a non-zero code. The simulator's profile
(`monitor.simulator.profiles`) can narrow this to what public evidence shows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from monitor.core.clock import Clock
from monitor.core.states import LOGGED_OFF, AgentState
from monitor.puzzel.endpoints import ENDPOINTS, Endpoint
from monitor.simulator import payloads, profiles
from monitor.simulator.answers import StateRows, UserIndex
from monitor.simulator.auth import IssuedToken
from monitor.simulator.backend import AgentTicker, User
from monitor.simulator.faults import FaultDecision
from monitor.simulator.simulator import RequestRecord, Simulator

API_PREFIX = "/ContactCentre5"
AUTH_PREFIX = "/auth"
ID_PREFIX = ""  # the oidc_token template is `/id/connect/token`
HOST_PREFIXES = {"api": API_PREFIX, "auth": AUTH_PREFIX, "id": ID_PREFIX}

SIMULATOR_KEY: web.AppKey[Simulator] = web.AppKey("simulator", Simulator)

_AUTH_ENDPOINTS = frozenset({"login", "get_access_token", "oidc_token"})
_TICKER_WINDOWS = frozenset({"today"})
_QUEUE_RESULTS = frozenset({"all", "userrelevant"})


def base_urls(root: str) -> dict[str, str]:
    """The base URLs a client should use for a simulator served at `root` (`http://host:port`)."""
    root = root.rstrip("/")
    return {host: root + prefix for host, prefix in HOST_PREFIXES.items()}


def tenant_settings(sim: Simulator, root: str) -> dict[str, Any]:
    """How a monitor reaches the simulator served at `root`: the connection part of a
    `tenants[]` entry (customer key, time zone, Puzzel ID credentials, base URLs), as a config
    file would hold it. The secret stays a SecretStr."""
    creds = sim.credentials
    urls = base_urls(root)
    return {
        "customer_key": sim.customer_key,
        "timezone": str(sim.timezone),
        "credentials": {
            "method": "puzzel_id",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "user_id": str(creds.user_id),
        },
        "api_base_url": urls["api"],
        "auth_base_url": urls["auth"],
        "id_base_url": urls["id"],
        "endpoints": simulated_endpoints(sim),
    }


def simulated_endpoints(sim: Simulator) -> dict[str, bool]:
    """The unverified endpoints this simulator serves, turned on (a real tenant turns on only
    those `doctor` finds)."""
    if getattr(sim, "profile", "full") != "full":
        return {}
    return {name: True for name, e in ENDPOINTS.items() if not e.verified}


@dataclass(frozen=True, slots=True)
class _Route:
    endpoint: Endpoint
    pattern: re.Pattern[str]
    literals: int


def _compile(endpoint: Endpoint) -> _Route:
    template = HOST_PREFIXES[endpoint.host] + endpoint.template
    parts = re.split(r"(\{\w+\})", template)
    regex = "".join(
        f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") and p.endswith("}") else re.escape(p)
        for p in parts
    )
    literals = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
    return _Route(endpoint, re.compile(f"^{regex}/?$", re.IGNORECASE), literals)


# more literal segments first, so `/users/stateinformation/{w}` wins over `/users/{userId}`
ROUTES: tuple[_Route, ...] = tuple(
    sorted((_compile(e) for e in ENDPOINTS.values()), key=lambda r: -r.literals)
)


def match_route(path: str) -> tuple[_Route, dict[str, str]] | None:
    for route in ROUTES:
        m = route.pattern.match(path)
        if m:
            return route, m.groupdict()
    return None


class ApiError(Exception):
    """An error answered with the envelope (or, for auth endpoints, a plain JSON body)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


_ids = itertools.count(1)


def _envelope(result: Any, code: int = 0, message: str = "") -> dict[str, Any]:
    return {"result": result, "code": code, "id": f"sim-{next(_ids):010d}", "message": message}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


Handler = Callable[["_Call"], Awaitable[Any]]


@dataclass(slots=True)
class _Call:
    request: web.Request
    params: dict[str, str]
    token: IssuedToken | None


class _Api:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.handlers: dict[str, Handler] = {
            "login": self.login,
            "get_access_token": self.get_access_token,
            "oidc_token": self.oidc_token,
            "access_token_information": self.access_token_information,
            "visual_queues": self.visual_queues,
            "visual_queue_state_information": self.visual_queue_state_information,
            "user_group_state_information": self.user_group_state_information,
            "user": self.user,
            "users": self.users,
            "user_groups": self.user_groups,
            "queues": self.queues,
            "user_state_information": self.user_state_information,
            "agent_stats": self.agent_stats,
            "visual_queue_ticker": self.visual_queue_ticker,
            "access_point_tickers": self.access_point_tickers,
            "pause_types": self.pause_types,
        }
        self._users = UserIndex()
        self._state_rows = StateRows()
        missing = set(ENDPOINTS) - set(self.handlers)
        if missing:
            raise RuntimeError(f"the simulator has no handler for endpoints {sorted(missing)}")

    @property
    def clock(self) -> Clock:
        return self.sim.clock

    @property
    def public(self) -> bool:
        return self.sim.profile == "public"

    def _envelope(self, result: Any, code: int = 0, message: str = "") -> dict[str, Any]:
        return profiles.envelope(result, code) if self.public else _envelope(result, code, message)

    # -- dispatch -------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        at, mono = self.clock.now(), self.clock.monotonic()
        found = match_route(request.path)
        endpoint = found[0].endpoint if found else None
        response = await self._answer(request, found)
        sim.requests.append(
            RequestRecord(
                at=at,
                monotonic=mono,
                method=request.method,
                path=request.path,
                endpoint=endpoint.name if endpoint else None,
                status=response.status,
                user_group_name=request.query.get("userGroupName"),
            )
        )
        return response

    async def _answer(
        self, request: web.Request, found: tuple[_Route, dict[str, str]] | None
    ) -> web.Response:
        faults = self.sim.faults
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        if found is None or not profiles.serves(self.sim.profile, found[0].endpoint.name):
            return _json(self._envelope(None, 404, f"no such resource: {request.path}"), 404)
        route, params = found
        endpoint = route.endpoint
        if request.method.upper() != endpoint.method:
            return _json(
                self._envelope(None, 405, f"{request.method} is not allowed here"),
                405,
                headers={"Allow": endpoint.method},
            )
        is_auth = endpoint.name in _AUTH_ENDPOINTS
        decision = faults.decide() if (not is_auth or faults.include_auth) else FaultDecision()
        if decision.stall_seconds > 0:
            await asyncio.sleep(decision.stall_seconds)
        if decision.status == 429:
            return _json(
                self._envelope(None, 429, "too many requests"),
                429,
                headers={"Retry-After": str(decision.retry_after or 0)},
            )
        if decision.status is not None:
            return _json(
                self._envelope(None, decision.status, "simulated server error"), decision.status
            )
        try:
            token = None
            if endpoint.host == "api":  # ContactCentre5 calls need a bearer token
                token = self._authenticate(request, params)
            self.sim.advance_to()
            result = await self.handlers[endpoint.name](_Call(request, params, token))
        except ApiError as exc:
            return _json(self._envelope(None, exc.status, exc.message), exc.status, exc.headers)
        except OAuthError as exc:
            body = {"error": exc.error, "error_description": exc.description}
            return _json(body, exc.status, {"Cache-Control": "no-store"})
        if isinstance(result, web.Response):
            return result
        body = result if is_auth else self._envelope(result)
        raw = orjson.dumps(body)
        if decision.malformed:
            raw = raw[: max(1, len(raw) // 2)]
        return web.Response(body=raw, status=200, content_type="application/json")

    def _authenticate(self, request: web.Request, params: dict[str, str]) -> IssuedToken:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        found = self.sim.tokens.lookup(value.strip(), self.clock.now())
        if isinstance(found, str):
            raise ApiError(401, found, headers=challenge)
        key = params.get("customerKey")
        if key is not None and key != found.customer_key:
            raise ApiError(403, f"the token does not give access to customer {key}")
        return found

    # -- helpers --------------------------------------------------------------------------

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise ApiError(400, "expected a JSON object body") from None
        if not isinstance(body, dict):
            raise ApiError(400, "expected a JSON object body")
        # ASP.NET model binding is case-insensitive: CustomerKey and customerKey both work
        return {str(k).lower(): v for k, v in body.items()}

    def _check_user_id_param(self, request: web.Request) -> None:
        raw = request.query.get("userId")
        if raw is not None and not raw.strip().lstrip("-").isdigit():
            raise ApiError(400, f"userId must be an integer, got {raw!r}")

    def _ticker_window(self, params: dict[str, str]) -> None:
        window = params.get("tickerPeriodWindow", "")
        if window.lower() not in _TICKER_WINDOWS:
            raise ApiError(400, f"unsupported tickerPeriodWindow {window!r}; expected 'Today'")

    def _users_in_group(self, request: web.Request) -> list[User]:
        self._users.refresh(self.sim.centre.users())
        group = request.query.get("userGroupName")
        return self._users.all() if group is None else self._users.in_group(group)

    # -- auth service and Puzzel ID -----------------------------------------------------

    async def login(self, call: _Call) -> Any:
        body = await self._json_body(call.request)
        creds, sim = self.sim.credentials, self.sim
        given_key = str(body.get("customerkey", ""))
        if (
            given_key != creds.customer_key
            or str(body.get("username", "")) != creds.user_name
            or str(body.get("password", "")) != creds.password.get_secret_value()
        ):
            return _json(
                {"code": 401, "message": "invalid customer key, user name or password"}, 401
            )
        now = self.clock.now()
        token = sim.tokens.issue(
            "login", creds.customer_key, creds.user_id, now, sim.faults.token_ttl
        )
        session = sim.tokens.open_session(
            creds.customer_key, creds.user_id, now, sim.faults.session_ttl
        )
        return {
            "accessToken": token.token,
            "refreshToken": {
                "customerKey": creds.customer_key,
                "sessionId": session.session_id,
                "expiryDate": payloads.zoneless_local(session.expires_at, sim.timezone),
            },
            "languageCode": "en",
            "twoFactorRequired": False,
            "twoFactor": None,
            "logoutFromExternalIdentityProvider": False,
        }

    async def get_access_token(self, call: _Call) -> Any:
        body = await self._json_body(call.request)
        sim, now = self.sim, self.clock.now()
        session = sim.tokens.session(str(body.get("sessionid", "")), now)
        if session is None or str(body.get("customerkey", "")) != session.customer_key:
            return _json({"code": 401, "message": "unknown or expired session"}, 401)
        token = sim.tokens.issue(
            "refresh", session.customer_key, session.user_id, now, sim.faults.token_ttl
        )
        return token.token  # a bare JSON string

    async def oidc_token(self, call: _Call) -> Any:
        request = call.request
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            raise OAuthError(400, "invalid_request", "expected a form-urlencoded body")
        form = await request.post()
        creds, sim = self.sim.credentials, self.sim
        client_id, client_secret = (
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
        )
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError(401, "invalid_client", "malformed Basic credentials") from None
            client_id, _, client_secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(
                400, "unsupported_grant_type", "only grant_type=client_credentials is supported"
            )
        if client_id != creds.client_id or client_secret != creds.client_secret.get_secret_value():
            raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
        scope = str(form.get("scope", ""))
        if scope != creds.scope:
            raise OAuthError(
                400, "invalid_scope", "scope must be contact-centre:{customerKey}:{userId}"
            )
        token = sim.tokens.issue(
            "oidc", creds.customer_key, creds.user_id, self.clock.now(), sim.faults.token_ttl
        )
        return {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": int(sim.faults.token_ttl.total_seconds()),
            "scope": scope,
        }

    # -- ContactCentre5 -----------------------------------------------------------------

    async def access_token_information(self, call: _Call) -> Any:
        assert call.token is not None  # bearer endpoints always carry a checked token
        creds, token = self.sim.credentials, call.token
        return {
            "customerKey": token.customer_key,
            "customerId": int(token.customer_key) if token.customer_key.isdigit() else 0,
            "userGroupId": 20000,
            "userId": token.user_id,
            "languageId": 1,
            "languageCode": "en",
            "passwordValidDaysLeft": 90 if token.user_id == creds.user_id else 0,
            "accessTokenExpiry": payloads.api_date(token.expires_at, self.sim.faults.legacy_dates),
        }

    async def visual_queues(self, call: _Call) -> Any:
        return [payloads.visual_queue(vq) for vq in self.sim.centre.visual_queues()]

    def _selected_queues(self, request: web.Request) -> list[Any]:
        queues = list(self.sim.centre.visual_queues())
        wanted = request.query.get("visualQueueId")
        if wanted is not None:
            queues = [vq for vq in queues if str(vq.id) == wanted.strip()]
        return queues

    async def visual_queue_state_information(self, call: _Call) -> Any:
        self._check_user_id_param(call.request)
        which = call.params.get("result", "")
        if which.lower() not in _QUEUE_RESULTS:
            raise ApiError(400, f"unsupported result {which!r}; expected 'All' or 'UserRelevant'")
        fields = self.sim.centre.queue_fields()
        selected = self._selected_queues(call.request)
        if self.public:
            all_queues = self.sim.centre.visual_queues()
            first = all_queues[0].id if all_queues else None
            return [
                profiles.queue_row(vq, fields.get(str(vq.id), {}), first=vq.id == first)
                for vq in selected
            ]
        return [payloads.visual_queue_state(vq, fields.get(str(vq.id), {})) for vq in selected]

    async def user_group_state_information(self, call: _Call) -> Any:
        self._check_user_id_param(call.request)
        self._ticker_window(call.params)
        centre = self.sim.centre
        states, calls, pause_types = (
            centre.agent_states(),
            centre.agent_call_counts(),
            centre.pause_types(),
        )
        users = self._users_in_group(call.request)
        if self.public:
            return self._state_rows.answer(
                users, states, calls, profiles.agent_row, context=("public",)
            )

        def row(u: User, state: AgentState, c: tuple[int, int]) -> dict[str, Any]:
            return payloads.user_group_state_row(u, state, c, pause_types)

        return self._state_rows.answer(
            users, states, calls, row, context=("full", tuple(pause_types.items()))
        )

    def _user(self, raw_id: str) -> User:
        self._users.refresh(self.sim.centre.users())
        u = self._users.get(raw_id)
        if u is None:
            raise ApiError(404, f"no user {raw_id}")
        return u

    async def user(self, call: _Call) -> Any:
        raw_id = call.params["userId"]
        creds = self.sim.credentials
        centre = self.sim.centre
        if raw_id == str(creds.user_id):
            return self._api_user_profile()
        u = self._user(raw_id)
        state, _ = centre.agent_states()[u.agent_id]
        profile = payloads.user_profile(
            u,
            state,
            centre.agent_tickers()[u.agent_id],
            centre.pause_types(),
            legacy_dates=self.sim.faults.legacy_dates,
        )
        return profiles.user_profile(profile, u, state) if self.public else profile

    def _api_user_profile(self) -> Any:
        creds = self.sim.credentials
        api_user = User(creds.user_id, 20000, "API", "API", "User", creds.user_name)
        profile = payloads.user_profile(
            api_user, LOGGED_OFF, AgentTicker(), {}, legacy_dates=self.sim.faults.legacy_dates
        )
        return profiles.user_profile(profile, api_user, LOGGED_OFF) if self.public else profile

    async def users(self, call: _Call) -> Any:
        if self.public:
            return [profiles.user_list_entry(u) for u in self.sim.centre.users()]
        return [
            {
                "id": u.id,
                "groupId": u.group_id,
                "firstName": u.first_name,
                "lastName": u.last_name,
                "userName": u.user_name,
            }
            for u in self.sim.centre.users()
        ]

    async def user_groups(self, call: _Call) -> Any:
        return [{"id": g.id, "name": g.name} for g in self.sim.centre.user_groups()]

    async def queues(self, call: _Call) -> Any:
        return [
            {"id": q.id, "key": q.key, "description": q.description, "serviceId": q.service_id}
            for vq in self.sim.centre.visual_queues()
            for q in vq.queues
        ]

    async def user_state_information(self, call: _Call) -> Any:
        u = self._user(call.params["userId"])
        centre = self.sim.centre
        state, since = centre.agent_states()[u.agent_id]
        return payloads.user_state_information(
            u, state, since, self.clock.now(), centre.pause_types()
        )

    async def agent_stats(self, call: _Call) -> Any:
        self._check_user_id_param(call.request)
        self._ticker_window(call.params)
        centre = self.sim.centre
        tickers, pause_types, queues = (
            centre.agent_tickers(),
            centre.pause_types(),
            centre.visual_queues(),
        )
        return [
            payloads.agent_stats_row(u, tickers[u.agent_id], pause_types, queues)
            for u in self._users_in_group(call.request)
        ]

    async def visual_queue_ticker(self, call: _Call) -> Any:
        self._ticker_window(call.params)
        fields = self.sim.centre.queue_fields()
        return [
            payloads.visual_queue_ticker(vq, fields.get(str(vq.id), {}))
            for vq in self._selected_queues(call.request)
        ]

    async def access_point_tickers(self, call: _Call) -> Any:
        self._ticker_window(call.params)
        return [payloads.access_point(ap) for ap in self.sim.centre.access_points()]

    async def pause_types(self, call: _Call) -> Any:
        return [
            {"id": pid, "description": name}
            for name, pid in sorted(self.sim.centre.pause_types().items(), key=lambda kv: kv[1])
        ]


def create_app(sim: Simulator, *, clock: Clock | None = None) -> web.Application:
    """An aiohttp application serving `sim`. A `clock` given here becomes the simulator's clock."""
    if clock is not None:
        sim.clock = clock
    api = _Api(sim)
    app = web.Application()
    app[SIMULATOR_KEY] = sim
    app.router.add_route("*", "/{tail:.*}", api.dispatch)
    return app
