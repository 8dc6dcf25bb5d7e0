"""What the HTTP sinks share: one POST with error mapping that never mentions the URL, and a
minimum interval between messages measured on the injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from monitor.alerts.sinks.base import Delivery, SinkError, classify_http, delivery_headers
from monitor.core.clock import Clock


class MinInterval:
    """At most one call per `interval` seconds (a leaky bucket of size one)."""

    def __init__(self, clock: Clock, interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._next: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock.monotonic()
            if self._next is not None and now < self._next:
                await self._clock.sleep(self._next - now)
            self._next = self._clock.monotonic() + self._interval

    def push_back(self, seconds: float) -> None:
        """Nothing before `seconds` from now (the receiver asked us to wait)."""
        self._next = max(self._next or 0.0, self._clock.monotonic() + seconds)


class HttpPoster:
    """POSTs bodies to one secret URL with an injected or private `ClientSession`."""

    def __init__(self, what: str, *, session: aiohttp.ClientSession | None, timeout: float) -> None:
        self._what = what
        self._session = session
        self._own_session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        if self._own_session is None or self._own_session.closed:
            self._own_session = aiohttp.ClientSession()
        return self._own_session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> str:
        """POST and return the response text; raise `SinkError` on anything but 2xx."""
        try:
            async with self._client().post(
                url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                text = await resp.text(errors="replace")
                if 200 <= resp.status < 300:
                    return text
                raise classify_http(resp.status, resp.headers.get("Retry-After"), self._what)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # the exception text may carry the URL (a secret): name the type only
            raise SinkError(f"{self._what}: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()


async def post_paced(
    http: HttpPoster,
    limiter: MinInterval,
    url: str,
    body: bytes,
    deliveries: Sequence[Delivery],
) -> None:
    """POST one JSON message no sooner than `limiter` allows; a `Retry-After` in the refusal
    holds back the next one too. The receiver ignores the delivery headers; a proxy in front of
    it (or a test receiver) can dedupe on them."""
    headers = {"Content-Type": "application/json", **delivery_headers(deliveries)}
    await limiter.wait()
    try:
        await http.post(url, body, headers)
    except SinkError as exc:
        if exc.retry_after is not None:
            limiter.push_back(exc.retry_after)
        raise
