"""`PuzzelClient`: typed async access to ContactCentre5 with auth, retries and a rate limit.

One client per tenant (customer key). Behaviour per HTTP answer:

- 2xx: API answers are an envelope `{result, code, id, message}` (only `result` and `code`
  needed; without `code` a 200 counts as success), or a bare JSON array (some tenants answer
  so); `code != 0` raises `PuzzelApiError` (not retried). The `result` is validated into the
  endpoint's model; list answers row by row: a row that does not fit is dropped, counted in
  `stats` by endpoint and field, and logged once when that field starts failing.
- 404/405 (or an envelope with code 404): `PuzzelNotFound`, not retried: the tenant does not
  have this endpoint (or this tenant's path for it is wrong).
- 401/403 on an API call: the token is dropped, a new one fetched, and the call retried once;
  a second refusal raises `PuzzelAuthError`. On auth endpoints 400/401/403 raise it directly.
- 429: wait `Retry-After` (seconds or an HTTP date; the rate limiter holds every other request
  of this tenant too), unless that would overrun the deadline: then `PuzzelRateLimited`.
- 5xx, timeouts, connection errors: retried with jittered exponential backoff until the call's
  deadline; then `PuzzelDeadlineExceeded` (its `last_error` says what kept failing).
- Other 4xx: `PuzzelApiError`, not retried.

Every wait goes through the injected clock. Debug logs name the endpoint, status and attempt;
never a token, secret or URL.
"""

from __future__ import annotations

import contextvars
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
import structlog

from monitor.core.clock import Clock, SystemClock
from monitor.puzzel.auth import (
    DEFAULT_SKEW,
    PasswordCredentials,
    PuzzelIdCredentials,
    TokenProvider,
    make_token_provider,
)
from monitor.puzzel.dates import resolve_timezone
from monitor.puzzel.endpoints import Endpoint, EndpointSetting, endpoint_table
from monitor.puzzel.exceptions import (
    PuzzelApiError,
    PuzzelAuthError,
    PuzzelDeadlineExceeded,
    PuzzelError,
    PuzzelMalformedResponse,
    PuzzelNotFound,
    PuzzelRateLimited,
    PuzzelTimeout,
    PuzzelTransportError,
)
from monitor.puzzel.models import (
    AccessPointTicker,
    AgentStats,
    Envelope,
    PauseType,
    RawRows,
    Rejection,
    RowCache,
    Rows,
    SystemQueue,
    TokenInformation,
    User,
    UserGroup,
    UserGroupAgentState,
    UserStateInformation,
    UserSummary,
    VisualQueue,
    VisualQueueState,
    VisualQueueTicker,
    parse_as,
    parse_raw_rows,
    parse_rows,
    split_rows,
)
from monitor.puzzel.ratelimit import RateLimiter
from monitor.puzzel.stats import ClientStats

log = structlog.get_logger("monitor.puzzel.client")

T = TypeVar("T")

DEFAULT_API_BASE_URL = "https://api.puzzel.com/ContactCentre5"
DEFAULT_AUTH_BASE_URL = "https://auth.puzzel.com"
DEFAULT_ID_BASE_URL = "https://app.puzzel.com"

# The deadline of the outermost call, so that a token fetch inside an API call cannot outlive it.
_CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "puzzel_call_deadline", default=None
)
_MAX_ERROR_TEXT = 200


@dataclass(frozen=True, slots=True)
class _Request:
    ep: Endpoint
    url: str
    params: Mapping[str, str] | None
    json: Any
    form: dict[str, str] | None
    bearer: bool
    token: str | None  # a fixed token: no re-authentication on 401
    rows: bool = False  # a list answer: its rows may be handed back raw (`_unwrap_rows`)


class PuzzelClient:
    """Async client for one Puzzel tenant. Use as `async with PuzzelClient(...) as client:`."""

    def __init__(
        self,
        auth: PuzzelIdCredentials | PasswordCredentials | TokenProvider,
        *,
        api_base_url: str = DEFAULT_API_BASE_URL,
        auth_base_url: str = DEFAULT_AUTH_BASE_URL,
        id_base_url: str = DEFAULT_ID_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
        timeout: float = 10.0,
        deadline: float = 30.0,
        max_rate: float = 10.0,
        burst: int = 10,
        retry_base: float = 0.5,
        retry_max_delay: float = 8.0,
        timezone: str | tzinfo = "Europe/Oslo",
        rng: random.Random | None = None,
        token_skew: float = DEFAULT_SKEW,
        limiter: RateLimiter | None = None,
        endpoints: Mapping[str, EndpointSetting] | None = None,
    ) -> None:
        if timeout <= 0 or deadline <= 0:
            raise ValueError("timeout and deadline must be positive numbers of seconds")
        self._bases = {
            "api": api_base_url.rstrip("/"),
            "auth": auth_base_url.rstrip("/"),
            "id": id_base_url.rstrip("/"),
        }
        self._session = session
        self._owns_session = session is None
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._deadline = deadline
        self._retry_base = retry_base
        self._retry_max_delay = retry_max_delay
        self.timezone = resolve_timezone(timezone)
        self._rng = rng or random.Random()
        self.limiter = limiter or RateLimiter(max_rate, burst, self._clock)
        self.stats = ClientStats()
        self.auth: TokenProvider
        if isinstance(auth, PuzzelIdCredentials | PasswordCredentials):
            self.auth = make_token_provider(
                auth, self, self._clock, skew=token_skew, timezone=self.timezone
            )
        else:
            self.auth = auth
        self._user_id: int | str | None = None
        # this tenant's table: unverified paths off unless turned on, paths overridable
        self.endpoints = endpoint_table(endpoints)
        self._rejecting: dict[str, frozenset[str]] = {}  # endpoint -> fields failing last call
        # the previous answer's rows per call (endpoint, model, query, path), by raw content
        self._row_caches: dict[tuple[Any, ...], RowCache] = {}

    def __repr__(self) -> str:
        return f"<PuzzelClient customer_key={self.customer_key!r}>"

    @property
    def customer_key(self) -> str:
        return self.auth.customer_key

    def enabled(self, name: str) -> bool:
        """Whether this tenant's configuration lets the monitor call endpoint `name`."""
        return self.endpoints[name].on

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise RuntimeError("the aiohttp session given to PuzzelClient is closed")
            self._session = aiohttp.ClientSession()
        return self._session

    # --- typed endpoints ----------------------------------------------------------------------

    async def access_token_information(self) -> TokenInformation:
        """`/accesstokeninformation`: the API user, tenant and token expiry."""
        return await self._get("access_token_information", TokenInformation)

    async def visual_queues(self) -> list[VisualQueue]:
        return await self._get_rows("visual_queues", VisualQueue)

    async def visual_queue_state_information(
        self,
        result: str = "All",
        user_id: int | str | None = None,
        visual_queue_id: int | None = None,
    ) -> list[VisualQueueState]:
        """State and today-ticker of every visual queue (or one, by `visual_queue_id`)."""
        query: dict[str, str] = {"userId": str(user_id or await self.api_user_id())}
        if visual_queue_id is not None:
            query["visualQueueId"] = str(visual_queue_id)
        return await self._get_rows(
            "visual_queue_state_information", VisualQueueState, query, result=result
        )

    async def user_group_state_information(
        self,
        ticker_period_window: str = "Today",
        user_group_name: str | None = None,
        user_id: int | str | None = None,
    ) -> list[UserGroupAgentState]:
        """Agent state and today-ticker, for one user group (by name) or all agents."""
        query: dict[str, str] = {"userId": str(user_id or await self.api_user_id())}
        if user_group_name is not None:
            query["userGroupName"] = user_group_name
        return await self._get_rows(
            "user_group_state_information",
            UserGroupAgentState,
            query,
            tickerPeriodWindow=ticker_period_window,
        )

    async def user(self, user_id: int | str) -> User:
        return await self._get("user", User, userId=user_id)

    async def users(self) -> list[UserSummary]:
        return await self._get_rows("users", UserSummary)

    async def user_groups(self) -> list[UserGroup]:
        return await self._get_rows("user_groups", UserGroup)

    async def queues(self) -> list[SystemQueue]:
        return await self._get_rows("queues", SystemQueue)

    async def user_state_information(self, user_id: int | str) -> UserStateInformation:
        """One agent's state with its status duration (unverified path)."""
        return await self._get("user_state_information", UserStateInformation, userId=user_id)

    async def agent_stats(self, ticker_period_window: str = "Today") -> list[AgentStats]:
        """Per-agent today-ticker (unverified path)."""
        query = {"userId": str(await self.api_user_id())}
        return await self._get_rows(
            "agent_stats", AgentStats, query, tickerPeriodWindow=ticker_period_window
        )

    async def visual_queue_ticker(
        self, ticker_period_window: str = "Today"
    ) -> list[VisualQueueTicker]:
        """Per-visual-queue ticker (unverified path)."""
        return await self._get_rows(
            "visual_queue_ticker",
            VisualQueueTicker,
            tickerPeriodWindow=ticker_period_window,
        )

    async def access_point_tickers(
        self, ticker_period_window: str = "Today"
    ) -> list[AccessPointTicker]:
        """Per-access-point ticker (unverified path)."""
        return await self._get_rows(
            "access_point_tickers",
            AccessPointTicker,
            tickerPeriodWindow=ticker_period_window,
        )

    async def pause_types(self) -> list[PauseType]:
        """The tenant's pause types (unverified path)."""
        query = {"userId": str(await self.api_user_id())}
        return await self._get_rows("pause_types", PauseType, query)

    async def api_user_id(self) -> int | str:
        """The API user's id: from the credentials, or learned from /accesstokeninformation."""
        if self.auth.user_id is None and self._user_id is None:
            await self.auth.get_token()  # a password login learns it on the way
        uid = self.auth.user_id or self._user_id
        if uid is None:
            uid = self._user_id = (await self.access_token_information()).user_id
        return uid

    # --- AuthTransport (used by the token providers) -----------------------------------------

    async def post_auth(
        self, endpoint: str, *, json: Any = None, form: dict[str, str] | None = None
    ) -> Any:
        ep = self.endpoints[endpoint]
        return await self._call(ep, self._url(ep), json=json, form=form, bearer=False)

    async def token_information(self, token: str) -> TokenInformation:
        ep = self.endpoints["access_token_information"]
        result = await self._call(ep, self._url(ep), token=token)
        return self._parse(ep, TokenInformation, result)

    # --- machinery ----------------------------------------------------------------------------

    async def raw(
        self, name: str, query: Mapping[str, str] | None = None, **path: str | int
    ) -> Any:
        """The unwrapped `result` of one call of endpoint `name`, unvalidated (for `doctor`)."""
        ep = self.endpoints[name]
        return await self._call(ep, self._url(ep, **path), params=query)

    async def _get(
        self,
        name: str,
        type_: type[T],
        query: Mapping[str, str] | None = None,
        **path: str | int,
    ) -> T:
        ep = self.endpoints[name]
        result = await self._call(ep, self._url(ep, **path), params=query)
        return self._parse(ep, type_, result)

    async def _get_rows(
        self,
        name: str,
        model: type[T],
        query: Mapping[str, str] | None = None,
        **path: str | int,
    ) -> list[T]:
        ep = self.endpoints[name]
        result = await self._call(ep, self._url(ep, **path), params=query, rows=True)
        key = (name, model, tuple(sorted((query or {}).items())), tuple(sorted(path.items())))
        cache = self._row_caches.get(key)
        if cache is None:
            cache = self._row_caches[key] = RowCache()
        parsed = self._parse_rows(ep, model, result, cache=cache)
        if parsed.rejected or self._rejecting.get(ep.name):  # the common case: nothing to note
            self._note_rejections(ep.name, parsed.rejected)
        return parsed.rows

    def _parse_rows(
        self, ep: Endpoint, model: type[T], result: Any, cache: RowCache | None = None
    ) -> Rows[T]:
        try:
            if isinstance(result, RawRows):
                done = parse_raw_rows(
                    model,
                    result,
                    timezone=self.timezone,
                    cache=cache if cache is not None else RowCache(),  # (an empty one is falsy)
                )
                if done is not None:
                    return done
                result = self._unwrap(ep, 200, result.body)  # a row orjson refuses: as before
            return parse_rows(model, result, endpoint=ep.name, timezone=self.timezone, cache=cache)
        except PuzzelMalformedResponse:
            self._count_malformed(ep)
            raise

    def _note_rejections(self, endpoint: str, rejected: Sequence[Rejection]) -> None:
        """Count dropped rows; log a field once when it starts failing and once when it stops."""
        counts = self.stats.of(endpoint).rejected
        by_field = Counter(r.field for r in rejected)
        for name, n in by_field.items():
            counts[name] = counts.get(name, 0) + n
        now, before = frozenset(by_field), self._rejecting.get(endpoint, frozenset())
        for name in sorted(now - before):
            reason = next(r.reason for r in rejected if r.field == name)
            log.warning(
                "puzzel rows rejected",
                tenant=self.customer_key,
                endpoint=endpoint,
                field=name,
                rows=by_field[name],
                reason=reason,
            )
        for name in sorted(before - now):
            log.info("puzzel rows accepted again", endpoint=endpoint, field=name)
        self._rejecting[endpoint] = now

    def _count_malformed(self, ep: Endpoint) -> None:
        stats = self.stats.of(ep.name)
        stats.failures += 1
        stats.call_failures += 1

    def _parse(self, ep: Endpoint, type_: type[T], result: Any) -> T:
        try:
            return parse_as(type_, result, endpoint=ep.name, timezone=self.timezone)
        except PuzzelMalformedResponse:
            self._count_malformed(ep)
            raise

    def _url(self, ep: Endpoint, **params: str | int) -> str:
        values = {k: quote(str(v), safe="") for k, v in params.items()}
        if "{customerKey}" in ep.template:
            values["customerKey"] = quote(self.customer_key, safe="")
        return self._bases[ep.host] + ep.path(**values)

    async def _call(
        self,
        ep: Endpoint,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        form: dict[str, str] | None = None,
        bearer: bool = True,
        token: str | None = None,
        rows: bool = False,
    ) -> Any:
        """One logical call: attempts until success, a final error, or the deadline. With
        `rows`, the answer's rows may come back as `RawRows` (see `_unwrap_rows`)."""
        stats = self.stats.of(ep.name)
        stats.calls += 1
        deadline_at = self._clock.monotonic() + self._deadline
        outer = _CALL_DEADLINE.get()
        if outer is not None:
            deadline_at = min(deadline_at, outer)
        reset = _CALL_DEADLINE.set(deadline_at)
        request = _Request(ep, url, params, json, form, bearer, token, rows)
        try:
            return await self._attempts(request, deadline_at)
        except PuzzelError:
            stats.call_failures += 1
            raise
        finally:
            _CALL_DEADLINE.reset(reset)

    async def _attempts(self, req: _Request, deadline_at: float) -> Any:
        ep = req.ep
        stats = self.stats.of(ep.name)
        attempt = 0
        reauthenticated = False
        last_error: PuzzelError | None = None
        while True:
            attempt += 1
            await self.limiter.acquire()
            remaining = deadline_at - self._clock.monotonic()
            if remaining <= 0:
                raise PuzzelDeadlineExceeded(ep.name, self._deadline, last_error) from last_error
            token, headers = await self._headers(req)
            stats.requests += 1
            if attempt > 1:
                stats.retries += 1
            try:
                status, resp_headers, body = await self._http(
                    req, headers, min(self._timeout, remaining)
                )
            except PuzzelTransportError as exc:
                stats.failures += 1
                log.debug(
                    "puzzel.request_failed", endpoint=ep.name, attempt=attempt,
                    error=type(exc).__name__,
                )  # fmt: skip
                last_error = exc
                await self._backoff(ep, attempt, deadline_at, last_error)
                continue
            log.debug("puzzel.response", endpoint=ep.name, status=status, attempt=attempt)
            if 200 <= status < 300:
                try:
                    if req.rows:
                        return self._unwrap_rows(ep, status, body)
                    return self._unwrap(ep, status, body)
                except PuzzelError:
                    stats.failures += 1
                    raise
            stats.failures += 1
            if status in (401, 403) and req.bearer and req.token is None and not reauthenticated:
                reauthenticated = True  # a fresh token, once
                self.auth.invalidate(token)
                continue
            if status == 429:
                last_error = self._wait_rate_limit(ep, attempt, resp_headers, deadline_at)
                continue
            error = self._error_for(req, status, body)
            if status < 500:
                raise error
            last_error = error
            await self._backoff(ep, attempt, deadline_at, last_error)

    async def _headers(self, req: _Request) -> tuple[str | None, dict[str, str]]:
        headers = {"Accept": "application/json"}
        token: str | None = None
        if req.bearer:
            token = req.token if req.token is not None else await self.auth.get_token()
            headers["Authorization"] = f"Bearer {token}"
        return token, headers

    def _wait_rate_limit(
        self, ep: Endpoint, attempt: int, headers: Mapping[str, str], deadline_at: float
    ) -> PuzzelRateLimited:
        """A 429: hold every request of this tenant for Retry-After (or a backoff), unless that
        overruns the call's deadline."""
        self.stats.of(ep.name).rate_limited += 1
        wait = self._retry_after(headers.get("Retry-After"))
        if wait is None:
            wait = self._backoff_delay(attempt)
        if self._clock.monotonic() + wait > deadline_at:
            raise PuzzelRateLimited(wait, endpoint=ep.name)
        log.debug("puzzel.rate_limited", endpoint=ep.name, retry_after=round(wait, 3))
        self.limiter.block_for(wait)  # the next acquire() waits it out
        return PuzzelRateLimited(wait, endpoint=ep.name)

    def _error_for(self, req: _Request, status: int, body: bytes) -> PuzzelError:
        """The typed error of an HTTP error status (429 and retried 401s aside)."""
        ep = req.ep
        code, message = _error_details(body)
        if status in (401, 403) and req.bearer:
            return PuzzelAuthError(message or "token refused", endpoint=ep.name, http_status=status)
        if status in (400, 401, 403) and ep.host != "api":
            return PuzzelAuthError(
                message or "credentials refused", endpoint=ep.name, http_status=status
            )
        if status in (404, 405):
            return PuzzelNotFound(code if code is not None else status, message, ep.name, status)
        return PuzzelApiError(code if code is not None else status, message, ep.name, status)

    async def _http(
        self, req: _Request, headers: dict[str, str], limit_seconds: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        session = self._get_session()
        data: bytes | dict[str, str] | None = req.form
        if req.json is not None:
            data = orjson.dumps(req.json)
            headers = {**headers, "Content-Type": "application/json"}
        try:
            async with session.request(
                req.ep.method,
                req.url,
                params=req.params,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=limit_seconds),
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                return resp.status, resp.headers, body
        except TimeoutError:
            raise PuzzelTimeout(
                f"{req.ep.name}: no answer within {limit_seconds:.3g} s", endpoint=req.ep.name
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PuzzelTransportError(
                f"{req.ep.name}: {type(exc).__name__}: {exc}", endpoint=req.ep.name
            ) from None

    def _unwrap_rows(self, ep: Endpoint, status: int, body: bytes) -> Any:
        """`_unwrap` of a list answer, with its rows left raw (`RawRows`: the row cache then
        decodes only the rows that changed) when the body is a plain envelope or a bare array.
        The envelope's other fields go through the same checks as in `_unwrap`; any other
        shape is `_unwrap`'s, with its errors."""
        split = split_rows(body) if ep.host == "api" else None
        if split is None:
            return self._unwrapped(ep, status, _decoded(ep, body))
        fields, rows = split
        if not fields:
            return rows  # a bare array, or an envelope of rows alone
        try:
            return self._unwrapped(ep, status, {**fields, "result": rows})
        except PuzzelError:  # the error the plain parse gives: bad JSON in a row comes first
            return self._unwrapped(ep, status, _decoded(ep, body))

    def _unwrap(self, ep: Endpoint, status: int, body: bytes) -> Any:
        return self._unwrapped(ep, status, _decoded(ep, body))

    def _unwrapped(self, ep: Endpoint, status: int, data: Any) -> Any:
        """The `result` of a decoded 2xx body (see the module docstring)."""
        if ep.host != "api" or isinstance(data, list):
            return data  # the auth services use no envelope; some tenants send bare arrays
        if not isinstance(data, dict):
            raise PuzzelMalformedResponse(
                ep.name, "expected an envelope {result, code} or a JSON array", field="body"
            )
        if "code" not in data:
            # a 200 without a code: the result if there is one, else the object itself
            return data.get("result", data)
        envelope = parse_as(Envelope, data, endpoint=ep.name, prefix="envelope")
        if envelope.code == 404:
            raise PuzzelNotFound(404, envelope.message or "", ep.name, status)
        if envelope.code != 0:
            raise PuzzelApiError(envelope.code, envelope.message or "", ep.name, status)
        return envelope.result

    def _backoff_delay(self, attempt: int) -> float:
        """Exponential, capped, with half of it jittered."""
        full = min(self._retry_max_delay, self._retry_base * 2.0 ** (attempt - 1))
        return full / 2 + self._rng.uniform(0, full / 2)

    async def _backoff(
        self, ep: Endpoint, attempt: int, deadline_at: float, last_error: PuzzelError
    ) -> None:
        delay = self._backoff_delay(attempt)
        if self._clock.monotonic() + delay >= deadline_at:
            raise PuzzelDeadlineExceeded(ep.name, self._deadline, last_error) from last_error
        log.debug("puzzel.retry", endpoint=ep.name, attempt=attempt, delay=round(delay, 3))
        await self._clock.sleep(delay)

    def _retry_after(self, value: str | None) -> float | None:
        """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, (when - self._clock.now()).total_seconds())


def _decoded(ep: Endpoint, body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PuzzelMalformedResponse(ep.name, f"not JSON ({exc})", field="body") from None


def _error_details(body: bytes) -> tuple[int | None, str]:
    """(code, message) from an error body: an envelope, an OAuth error or nothing useful.

    Only these structured fields are kept, never the raw body, so nothing sent to us leaks.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    code = data.get("code")
    parts = [
        str(data[k])
        for k in ("message", "Message", "error", "error_description")
        if isinstance(data.get(k), str) and data[k]
    ]
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        "; ".join(parts)[:_MAX_ERROR_TEXT],
    )
