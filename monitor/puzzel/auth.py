"""Access tokens for the ContactCentre5 API: two credential kinds behind one `TokenProvider`.

- `PuzzelIdCredentials`: Puzzel ID (OIDC client credentials) at `{id}/id/connect/token`, scope
  `contact-centre:{customerKey}:{userId}` (puzzel-api.md 2b). The answer says `expires_in`.
- `PasswordCredentials`: the Puzzel Auth service's LogIn (2a). Later tokens come from
  GetAccessToken with the LogIn session, falling back to a new LogIn when the session is refused.
  LogIn does not say when the access token expires, so the provider asks `/accesstokeninformation`
  (which also tells the API user's `userId`).

Tokens are reused until `skew` seconds before expiry (or half their lifetime, if that is shorter).
With no expiry known at all, a token is assumed to live 15 minutes. `invalidate()` drops the
current token after a 401. Secrets are `SecretStr` and no repr or log line shows them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, SecretStr

from monitor.core.clock import Clock
from monitor.puzzel.exceptions import PuzzelAuthError, PuzzelError, PuzzelMalformedResponse
from monitor.puzzel.models import LoginResponse, OidcTokenResponse, TokenInformation, parse_as

log = structlog.get_logger("monitor.puzzel.auth")

DEFAULT_TOKEN_TTL = 900.0
DEFAULT_SKEW = 60.0


class PuzzelIdCredentials(BaseModel):
    """An OIDC client (grant type client credentials, scope `contact-centre`) and its API user."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    client_id: str
    client_secret: SecretStr
    customer_key: str
    user_id: int | str

    @property
    def scope(self) -> str:
        return f"contact-centre:{self.customer_key}:{self.user_id}"


class PasswordCredentials(BaseModel):
    """A Puzzel user name and password for the Auth service's LogIn."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    customer_key: str
    user_name: str
    password: SecretStr
    client_name: str = "puzzel-monitor"
    user_id: int | str | None = None  # learned from /accesstokeninformation when not given


Credentials = PuzzelIdCredentials | PasswordCredentials


class AuthTransport(Protocol):
    """What a token provider needs from the HTTP client."""

    async def post_auth(
        self, endpoint: str, *, json: Any = None, form: dict[str, str] | None = None
    ) -> Any:
        """POST to an auth endpoint (by table name) and return its decoded JSON body.

        Raises PuzzelAuthError when the credentials or session are refused.
        """

    async def token_information(self, token: str) -> TokenInformation:
        """`/accesstokeninformation` called with this token."""


class TokenProvider(Protocol):
    """Hands out bearer tokens for one tenant."""

    @property
    def customer_key(self) -> str: ...

    @property
    def user_id(self) -> int | str | None:
        """The API user's id, once known."""

    async def get_token(self) -> str:
        """A token that is valid for at least a little while."""

    def invalidate(self, token: str | None = None) -> None:
        """Stop using `token` (or the current token) after Puzzel refused it."""


class _CachingProvider:
    """Token caching, expiry and single-flight fetching; subclasses say how to fetch."""

    def __init__(
        self,
        transport: AuthTransport,
        clock: Clock,
        *,
        skew: float = DEFAULT_SKEW,
        default_ttl: float = DEFAULT_TOKEN_TTL,
        timezone: Any = None,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._skew = skew
        self._default_ttl = default_ttl
        self._timezone = timezone
        self._token: str | None = None
        self._refresh_at = 0.0  # clock.monotonic() after which we fetch a new token
        self._lock = asyncio.Lock()
        self.fetches = 0  # tokens obtained (for tests and diagnostics)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} customer_key={self.customer_key!r}>"

    @property
    def customer_key(self) -> str:
        raise NotImplementedError

    async def get_token(self) -> str:
        async with self._lock:  # concurrent callers share one fetch
            if self._token is not None and self._clock.monotonic() < self._refresh_at:
                return self._token
            token, ttl = await self._fetch()
            self.fetches += 1
            lifetime = ttl if ttl is not None and ttl > 0 else self._default_ttl
            self._token = token
            self._refresh_at = self._clock.monotonic() + lifetime - min(self._skew, lifetime / 2)
            log.debug("puzzel.token", provider=type(self).__name__, lifetime=round(lifetime, 1))
            return token

    def invalidate(self, token: str | None = None) -> None:
        if token is None or token == self._token:
            self._token = None

    async def _fetch(self) -> tuple[str, float | None]:
        """A new token and its lifetime in seconds (None: unknown)."""
        raise NotImplementedError

    async def _lifetime_from_server(self, token: str) -> float | None:
        """Ask /accesstokeninformation when the token expires (None when it cannot say)."""
        try:
            info = await self._transport.token_information(token)
        except PuzzelAuthError:
            raise
        except PuzzelError as exc:
            log.debug("puzzel.token_information_failed", error=type(exc).__name__)
            return None
        self._learn(info)
        return (info.access_token_expiry - self._clock.now()).total_seconds()

    def _learn(self, info: TokenInformation) -> None:
        """Hook: remember what token information tells (e.g. the user id)."""


class PuzzelIdTokenProvider(_CachingProvider):
    """Client-credentials tokens from Puzzel ID."""

    def __init__(
        self,
        credentials: PuzzelIdCredentials,
        transport: AuthTransport,
        clock: Clock,
        **kwargs: Any,
    ) -> None:
        super().__init__(transport, clock, **kwargs)
        self.credentials = credentials

    @property
    def customer_key(self) -> str:
        return self.credentials.customer_key

    @property
    def user_id(self) -> int | str | None:
        return self.credentials.user_id

    async def _fetch(self) -> tuple[str, float | None]:
        c = self.credentials
        body = await self._transport.post_auth(
            "oidc_token",
            form={
                "grant_type": "client_credentials",
                "client_id": c.client_id,
                "client_secret": c.client_secret.get_secret_value(),
                "scope": c.scope,
            },
        )
        answer = parse_as(OidcTokenResponse, body, endpoint="oidc_token", prefix="body")
        token = answer.access_token.get_secret_value()
        if not token:
            raise PuzzelMalformedResponse("oidc_token", "empty token", field="access_token")
        if answer.expires_in is not None:
            return token, answer.expires_in
        return token, await self._lifetime_from_server(token)


class PasswordTokenProvider(_CachingProvider):
    """LogIn / GetAccessToken tokens from the Puzzel Auth service."""

    def __init__(
        self,
        credentials: PasswordCredentials,
        transport: AuthTransport,
        clock: Clock,
        **kwargs: Any,
    ) -> None:
        super().__init__(transport, clock, **kwargs)
        self.credentials = credentials
        self._user_id = credentials.user_id
        self._session_id: SecretStr | None = None
        self._session_customer_key = credentials.customer_key
        self.logins = 0
        self.refreshes = 0

    @property
    def customer_key(self) -> str:
        return self.credentials.customer_key

    @property
    def user_id(self) -> int | str | None:
        return self._user_id

    def _learn(self, info: TokenInformation) -> None:
        if self._user_id is None:
            self._user_id = info.user_id

    async def _fetch(self) -> tuple[str, float | None]:
        token: str | None = None
        if self._session_id is not None:
            try:
                token = await self._refresh(self._session_id)
            except PuzzelAuthError:
                log.debug("puzzel.session_refused")
                self._session_id = None
        if token is None:
            token = await self._login()
        return token, await self._lifetime_from_server(token)

    async def _login(self) -> str:
        c = self.credentials
        body = await self._transport.post_auth(
            "login",
            json={
                "customerKey": c.customer_key,
                "userName": c.user_name,
                "password": c.password.get_secret_value(),
                "clientName": c.client_name,
            },
        )
        self.logins += 1
        answer = parse_as(
            LoginResponse, body, endpoint="login", timezone=self._timezone, prefix="body"
        )
        if answer.two_factor_required:
            raise PuzzelAuthError(
                "the account requires two-factor authentication; use a Puzzel ID OIDC client",
                endpoint="login",
            )
        if answer.access_token is None or not answer.access_token.get_secret_value():
            raise PuzzelMalformedResponse("login", "no access token", field="body.accessToken")
        if answer.refresh_token is not None:
            self._session_id = answer.refresh_token.session_id
            self._session_customer_key = answer.refresh_token.customer_key
        return answer.access_token.get_secret_value()

    async def _refresh(self, session_id: SecretStr) -> str:
        body = await self._transport.post_auth(
            "get_access_token",
            json={
                "customerKey": self._session_customer_key,
                "sessionId": session_id.get_secret_value(),
            },
        )
        self.refreshes += 1
        # Seen as a bare JSON string (ND stores the whole body); accept an object too.
        if isinstance(body, str) and body:
            return body
        if isinstance(body, dict):
            for key in ("accessToken", "access_token", "AccessToken"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    return value
        raise PuzzelMalformedResponse(
            "get_access_token",
            "expected a JSON string token or an object with 'accessToken'",
            field="body",
        )


def make_token_provider(
    credentials: Credentials,
    transport: AuthTransport,
    clock: Clock,
    *,
    skew: float = DEFAULT_SKEW,
    default_ttl: float = DEFAULT_TOKEN_TTL,
    timezone: Any = None,
) -> PuzzelIdTokenProvider | PasswordTokenProvider:
    """The provider for this kind of credentials."""
    kwargs: dict[str, Any] = {"skew": skew, "default_ttl": default_ttl, "timezone": timezone}
    if isinstance(credentials, PuzzelIdCredentials):
        return PuzzelIdTokenProvider(credentials, transport, clock, **kwargs)
    return PasswordTokenProvider(credentials, transport, clock, **kwargs)
