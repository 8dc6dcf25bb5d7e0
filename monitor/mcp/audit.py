"""The audit stream: who called which tool with what, and how it ended."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis

from monitor.core.clock import Clock
from monitor.mcp.keys import McpKeys

# result codes
OK = "ok"
DENIED = "denied"  # no, bad or expired token, or a scope or tenant/team it lacks
NOT_FOUND = "not_found"
INVALID = "invalid"  # the arguments were refused
ERROR = "error"

# the arguments are the caller's, of any size: the stream keeps enough to see what was asked
MAX_ARGUMENTS_BYTES = 2000


class AuditLog:
    def __init__(
        self, redis: aioredis.Redis, *, clock: Clock, key_prefix: str = "pzm", maxlen: int = 100_000
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._key = McpKeys(key_prefix).audit
        self._maxlen = maxlen

    async def record(
        self, *, token: str | None, tool: str, arguments: Mapping[str, Any], code: str
    ) -> None:
        """`token` is the token's *name* (None when no valid token was given)."""
        await self._redis.xadd(
            self._key,
            {
                "at": self._clock.now().isoformat(),
                "token": token or "",
                "tool": tool,
                "arguments": orjson.dumps(dict(arguments), default=str)[:MAX_ARGUMENTS_BYTES],
                "code": code,
            },
            maxlen=self._maxlen,
            approximate=True,
        )

    async def entries(self, count: int = 1000) -> list[dict[str, str]]:
        """The latest `count` entries, oldest first."""
        rows = await self._redis.xrevrange(self._key, count=count) or []
        return [
            {_text(k): _text(v) for k, v in (fields or {}).items() if k is not None}
            for _, fields in reversed(rows)
        ]


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""
