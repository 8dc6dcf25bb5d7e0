"""The simulator's credentials and the tokens and refresh sessions it has issued."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import SecretStr

TokenKind = Literal["login", "refresh", "oidc"]


@dataclass(frozen=True)
class Credentials:
    """What a client needs to log in to the simulator (all three flows).

    The secrets are SecretStr so that logging this object never shows them; `describe()` spells
    them out on purpose, since these are the simulator's own throw-away credentials.
    """

    customer_key: str = "12345"
    user_id: int = 100001  # the API user (the `{userId}` of the Puzzel ID scope)
    user_name: str = "api.monitor"
    password: SecretStr = field(default_factory=lambda: SecretStr("simulated-password"))
    client_id: str = "puzzel-monitor-sim"
    client_secret: SecretStr = field(default_factory=lambda: SecretStr("simulated-client-secret"))

    @property
    def scope(self) -> str:
        return f"contact-centre:{self.customer_key}:{self.user_id}"

    def describe(self) -> str:
        return "\n".join(
            [
                f"customer key:  {self.customer_key}",
                f"user id:       {self.user_id}",
                f"user name:     {self.user_name}",
                f"password:      {self.password.get_secret_value()}",
                f"client id:     {self.client_id}",
                f"client secret: {self.client_secret.get_secret_value()}",
                f"scope:         {self.scope}",
            ]
        )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    kind: TokenKind
    customer_key: str
    user_id: int
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    """A LogIn refresh session (`refreshToken.sessionId`)."""

    session_id: str
    customer_key: str
    user_id: int
    expires_at: datetime


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenStore:
    """Bearer tokens and refresh sessions, checked against the simulator's clock."""

    def __init__(self) -> None:
        self._tokens: dict[str, IssuedToken] = {}
        self._sessions: dict[str, Session] = {}
        self.revocations = 0

    def issue(
        self, kind: TokenKind, customer_key: str, user_id: int, now: datetime, ttl: timedelta
    ) -> IssuedToken:
        """A JWT-shaped (unsigned, ES256-labelled) token whose claims a client may read."""
        expires = now + ttl
        claims: dict[str, object] = {
            "sub": str(user_id),
            "urn:puzzel:cc:slid": customer_key,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_hex(8),
        }
        token = ".".join(
            (_b64({"alg": "ES256", "typ": "JWT"}), _b64(claims), secrets.token_urlsafe(48))
        )
        issued = IssuedToken(token, kind, customer_key, user_id, now, expires)
        self._tokens[token] = issued
        return issued

    def lookup(self, token: str, now: datetime) -> IssuedToken | str:
        """The token, or why it is refused ('unknown or revoked', 'expired')."""
        issued = self._tokens.get(token)
        if issued is None:
            return "the access token is unknown or has been revoked"
        if now >= issued.expires_at:
            return "the access token has expired"
        return issued

    def open_session(
        self, customer_key: str, user_id: int, now: datetime, ttl: timedelta
    ) -> Session:
        session = Session(secrets.token_hex(16), customer_key, user_id, now + ttl)
        self._sessions[session.session_id] = session
        return session

    def session(self, session_id: str, now: datetime) -> Session | None:
        s = self._sessions.get(session_id)
        return s if s is not None and now < s.expires_at else None

    def revoke_all(self, *, sessions: bool = False) -> int:
        """Revoke every access token (and the refresh sessions too, if asked). Returns the count."""
        count = len(self._tokens)
        self._tokens.clear()
        if sessions:
            self._sessions.clear()
        self.revocations += 1
        return count

    @property
    def active(self) -> int:
        return len(self._tokens)
