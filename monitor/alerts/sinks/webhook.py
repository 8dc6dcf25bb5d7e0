"""A generic webhook: Alertmanager webhook v4 JSON, signed with HMAC-SHA256.

Signature: `hex(HMAC-SHA256(key, f"{timestamp}.{body}"))` where `timestamp` is the decimal Unix
time in the `X-Puzzel-Monitor-Timestamp` header and `body` the raw request body; sent as
`X-Puzzel-Monitor-Signature: sha256=<hex>`. See docs/alerting.md for the receiver's recipe.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

import aiohttp
import orjson
from pydantic import SecretStr

from monitor.alerts.model import Alert, webhook_payload
from monitor.alerts.sinks.base import Delivery, delivery_headers
from monitor.alerts.sinks.http import HttpPoster
from monitor.core.clock import Clock

TIMESTAMP_HEADER = "X-Puzzel-Monitor-Timestamp"
SIGNATURE_HEADER = "X-Puzzel-Monitor-Signature"


def sign(body: bytes, timestamp: str, key: str) -> str:
    """The `sha256=<hex>` signature of `body` sent at `timestamp`."""
    mac = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    body: bytes,
    timestamp: str,
    signature: str,
    key: str,
    *,
    tolerance_s: float = 300.0,
    now: datetime | float,
) -> bool:
    """Whether `signature` is valid for `body` and `timestamp` is within `tolerance_s` of `now`."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(body, timestamp, key).encode(), signature.strip().encode())


class WebhookSink:
    def __init__(
        self,
        url: SecretStr,
        *,
        clock: Clock,
        receiver: str = "webhook",
        hmac_key: SecretStr | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        max_alerts: int = 100,
        external_url: str = "",
    ) -> None:
        self._url = url
        self._key = hmac_key
        self._clock = clock
        self._receiver = receiver
        self._max = max_alerts
        self._external_url = external_url
        self._http = HttpPoster(f"webhook {receiver}", session=session, timeout=timeout)

    def __repr__(self) -> str:
        return f"WebhookSink(receiver={self._receiver!r}, url=SecretStr('**********'))"

    @property
    def max_batch(self) -> int:
        return self._max

    def request(
        self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers for one batch (all alerts of one team). Each `alerts[]` item
        carries `idempotencyKey` and `delivery` when `deliveries` are given."""
        team = batch[0].team if batch else ""
        group = {"team": team} if team and all(a.team == team for a in batch) else {}
        payload = webhook_payload(
            batch, receiver=self._receiver, group_labels=group, external_url=self._external_url
        )
        for item, d in zip(payload["alerts"], deliveries, strict=False):
            item["idempotencyKey"] = d.idempotency_key
            item["delivery"] = d.kind
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", **delivery_headers(deliveries)}
        if self._key is not None:
            ts = str(int(self._clock.now().timestamp()))
            headers[TIMESTAMP_HEADER] = ts
            headers[SIGNATURE_HEADER] = sign(body, ts, self._key.get_secret_value())
        return body, headers

    async def send(self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()) -> None:
        body, headers = self.request(batch, deliveries)
        await self._http.post(self._url.get_secret_value(), body, headers)

    async def close(self) -> None:
        await self._http.close()
