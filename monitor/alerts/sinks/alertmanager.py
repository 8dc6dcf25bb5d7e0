"""Alertmanager v2 (`POST /api/v2/alerts`), so its grouping, silences and inhibition apply.

Alertmanager expects clients to keep re-sending alerts while they fire (an alert not refreshed
within `resolve_timeout` resolves itself) and to send the resolve (with `endsAt`) for a while.
The outbox delivers each transition at once; `AlertmanagerResender` re-sends every open alert
every `resend_interval`, and resolved ones for `resolved_for` after they resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import timedelta

import aiohttp
import orjson
import structlog
from pydantic import SecretStr
from redis.exceptions import RedisError

from monitor.alerts.model import Alert
from monitor.alerts.sinks.base import Delivery, SinkError, delivery_headers
from monitor.alerts.sinks.http import HttpPoster
from monitor.alerts.store import AlertStore
from monitor.core.clock import Clock

log = structlog.get_logger(__name__)


class AlertmanagerSink:
    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        bearer_token: SecretStr | None = None,
        timeout: float = 10.0,
        max_alerts: int = 500,
    ) -> None:
        self._endpoint = url.rstrip("/") + "/api/v2/alerts"
        self._token = bearer_token
        self._max = max_alerts
        self._http = HttpPoster("alertmanager", session=session, timeout=timeout)

    def __repr__(self) -> str:
        return f"AlertmanagerSink(endpoint={self._endpoint!r})"

    @property
    def max_batch(self) -> int:
        return self._max

    async def send(self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()) -> None:
        # labels stay as they are: Alertmanager dedupes by them, so the key goes in headers only
        body = orjson.dumps([a.to_am_v2() for a in batch])
        headers = {"Content-Type": "application/json", **delivery_headers(deliveries)}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        await self._http.post(self._endpoint, body, headers)

    async def close(self) -> None:
        await self._http.close()


class AlertmanagerResender:
    """Re-sends open (and recently resolved) alerts from the alert table to Alertmanager."""

    def __init__(
        self,
        sink: AlertmanagerSink,
        store: AlertStore,
        *,
        clock: Clock,
        resend_interval: timedelta = timedelta(seconds=60),
        resolved_for: timedelta = timedelta(minutes=5),
        backing_off: Callable[[], bool] = lambda: False,
    ) -> None:
        self._sink = sink
        self._backing_off = backing_off
        self._store = store
        self._clock = clock
        self.resend_interval = resend_interval
        self.resolved_for = resolved_for

    async def resend_once(self) -> int:
        """Send every alert that is firing or resolved within `resolved_for`; returns the count."""
        now = self._clock.now()
        alerts = [
            r.alert
            for r in await self._store.all()
            if r.alert.ends_at is None or now - r.updated_at <= self.resolved_for
        ]
        size = self._sink.max_batch
        for i in range(0, len(alerts), size):
            await self._sink.send(alerts[i : i + size])
        return len(alerts)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            sleeper = asyncio.ensure_future(self._clock.sleep(self.resend_interval.total_seconds()))
            stopper = asyncio.ensure_future(stopping.wait())
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for t in (sleeper, stopper):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            if stopping.is_set():
                return
            if self._backing_off():
                continue  # the sink's backoff holds for re-sends too; they resume with it
            try:
                await self.resend_once()
            except (SinkError, RedisError) as exc:
                # the next round re-sends everything anyway
                log.warning("alertmanager.resend_failed", error=str(exc))
