"""What a sink is: something that delivers one batch of alerts as one message, or says why not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.alerts.model import Alert


class SinkError(Exception):
    """A delivery failed. `permanent` failures are not retried; `retry_after` (seconds) is the
    earliest sensible retry, when the receiver said so (HTTP 429 `Retry-After`)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Sink(Protocol):
    """Delivers a batch (at most `max_batch` alerts, all for one team) as one message.

    A batch either reaches the receiver or `send` raises `SinkError`: the outbox relies on that
    to retry without sending anything twice.
    """

    @property
    def max_batch(self) -> int: ...

    async def send(self, batch: Sequence[Alert]) -> None: ...


def classify_http(status: int, retry_after: str | None, what: str) -> SinkError:
    """The error for a non-2xx answer: 429 honours Retry-After, 5xx retried, other 4xx permanent."""
    if status == 429:
        return SinkError(f"{what}: HTTP 429", retry_after=parse_retry_after(retry_after))
    if status >= 500:
        return SinkError(f"{what}: HTTP {status}")
    return SinkError(f"{what}: HTTP {status}", permanent=True)


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # the HTTP-date form: fall back to our own backoff
