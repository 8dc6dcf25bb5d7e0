"""Bearer-token protection for the monitor's HTTP API (`/api/v1/...`)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import SecretStr

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_middleware(token: SecretStr | None, prefix: str = "/api/") -> Callable[..., object]:
    """A middleware that requires `Authorization: Bearer <token>` on paths under `prefix`.

    With no token configured the API answers 503, so an unconfigured API is never open.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(prefix):
            return await handler(request)
        if token is None or not token.get_secret_value():
            return web.json_response(
                {"error": "the HTTP API is disabled: set api.token in the configuration"},
                status=503,
            )
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        ):
            return web.json_response(
                {"error": "missing or invalid bearer token"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    return middleware
