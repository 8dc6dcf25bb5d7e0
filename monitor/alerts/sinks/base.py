"""What a sink is: something that delivers one batch of alerts as one message, or says why not."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

from monitor.alerts.model import Alert

# What a receiver is told about a notification: `first` the first attempt of an alert's state
# change, `repeat` a reminder or escalation of a still-firing alert (a new notification with its
# own key), `redelivery` another attempt at a notification that may already have arrived (after
# a failed or timed-out attempt, a restart, or a Redis that lost its data).
DeliveryKind = Literal["first", "repeat", "redelivery"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
DELIVERY_HEADER = "X-Puzzel-Monitor-Delivery"


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one alert of a batch is being delivered: its stable key and what kind of send it is."""

    idempotency_key: str
    kind: DeliveryKind


def message_key(deliveries: Sequence[Delivery]) -> str:
    """The key of a whole message: stable for the same alerts in the same notifications."""
    joined = "\n".join(sorted(d.idempotency_key for d in deliveries))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def message_kind(deliveries: Sequence[Delivery]) -> DeliveryKind:
    """A message is a redelivery if any of it is, a repeat if all of it is, else a first send."""
    kinds = {d.kind for d in deliveries}
    if "redelivery" in kinds:
        return "redelivery"
    if kinds == {"repeat"}:
        return "repeat"
    return "first"


def delivery_headers(deliveries: Sequence[Delivery]) -> dict[str, str]:
    """The idempotency headers of one message (none when the caller gave no deliveries)."""
    if not deliveries:
        return {}
    return {IDEMPOTENCY_HEADER: message_key(deliveries), DELIVERY_HEADER: message_kind(deliveries)}


class SinkError(Exception):
    """A delivery failed. `permanent` failures are not retried; `retry_after` (seconds) or
    `retry_at` (an instant) is the earliest sensible retry, when the receiver said so."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        retry_at: datetime | None = None,
        permanent: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.retry_at = retry_at
        self.permanent = permanent

    def wait_seconds(self, now: datetime) -> float | None:
        """How long the receiver asked us to wait, measured from `now` (None: it did not say)."""
        if self.retry_after is not None:
            return self.retry_after
        if self.retry_at is not None:
            return max(0.0, (self.retry_at - now).total_seconds())
        return None


class Sink(Protocol):
    """Delivers a batch (at most `max_batch` alerts, all for one team) as one message.

    A batch either reaches the receiver or `send` raises `SinkError`: the outbox relies on that
    to retry without sending anything twice. `deliveries` (one per alert, same order) carry the
    idempotency keys a sink passes on so that receivers can drop what they already have.
    """

    @property
    def max_batch(self) -> int: ...

    async def send(self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()) -> None: ...


def classify_http(status: int, retry_after: str | None, what: str) -> SinkError:
    """The error for a non-2xx answer: 429 and 503 honour Retry-After, 5xx and 408 are retried,
    other 4xx are permanent (Slack's and Alertmanager's 4xx mean the message itself is wrong)."""
    seconds, at = parse_retry_after(retry_after)
    if status in (429, 503):
        return SinkError(f"{what}: HTTP {status}", retry_after=seconds, retry_at=at)
    if status >= 500 or status == 408:
        return SinkError(f"{what}: HTTP {status}")
    return SinkError(f"{what}: HTTP {status}", permanent=True)


def parse_retry_after(value: str | None) -> tuple[float | None, datetime | None]:
    """`Retry-After` as (seconds, None) or (None, instant) for the HTTP-date form."""
    if value is None or not value.strip():
        return None, None
    text = value.strip()
    try:
        return max(0.0, float(text)), None
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None, None  # unreadable: our own backoff applies
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return None, at
