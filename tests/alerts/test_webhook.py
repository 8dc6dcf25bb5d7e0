"""The signed webhook: v4 JSON, and a signature that verifies with the documented recipe."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import orjson
from aiohttp import web
from pydantic import SecretStr

from monitor.alerts.sinks.webhook import WebhookSink, verify_signature
from monitor.core.clock import VirtualClock
from tests.alerts.helpers import T0, Receiver, alert
from tests.redis_server import free_port

KEY = "whsec-test-key"


def documented_recipe(body: bytes, headers: dict[str, str], key: str, now: float) -> bool:
    """The receiver's check exactly as docs/alerting.md spells it out (stdlib only)."""
    ts = headers["X-Puzzel-Monitor-Timestamp"]
    sig = headers["X-Puzzel-Monitor-Signature"]
    if abs(now - int(ts)) > 300:
        return False
    expected = hmac.new(key.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, sig)


async def test_signed_post_verifies_with_the_recipe_and_tampering_fails() -> None:
    """A delivered webhook verifies; a changed body, a wrong key or a stale timestamp do not."""
    clock = VirtualClock(T0)
    receiver = Receiver()
    runner = web.AppRunner(receiver.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sink = WebhookSink(
        SecretStr(f"http://127.0.0.1:{port}/hook"),
        clock=clock,
        receiver="ops",
        hmac_key=SecretStr(KEY),
    )
    try:
        await sink.send([alert("1"), alert("2")])
    finally:
        await sink.close()
        await runner.cleanup()
    ((_, body, headers),) = receiver.requests
    now = T0.timestamp()
    assert documented_recipe(body, headers, KEY, now)
    ts, sig = headers["X-Puzzel-Monitor-Timestamp"], headers["X-Puzzel-Monitor-Signature"]
    assert verify_signature(body, ts, sig, KEY, now=clock.now())
    tampered = body.replace(b"1001", b"1002") if b"1001" in body else body + b" "
    assert not documented_recipe(tampered, headers, KEY, now)
    assert not verify_signature(tampered, ts, sig, KEY, now=clock.now())
    assert not verify_signature(body, ts, sig, "other-key", now=clock.now())
    assert not verify_signature(body, ts, sig, KEY, now=clock.now() + timedelta(minutes=6))
    assert not verify_signature(body, str(int(ts) + 1), sig, KEY, now=clock.now())
    payload = orjson.loads(body)
    assert payload["version"] == "4"
    assert payload["receiver"] == "ops"
    assert payload["groupLabels"] == {"team": "Support"}
    assert len(payload["alerts"]) == 2


def test_unsigned_when_no_key() -> None:
    """Without an HMAC key no signature headers are sent."""
    sink = WebhookSink(SecretStr("http://127.0.0.1:1/x"), clock=VirtualClock(T0))
    _, headers = sink.request([alert("1")])
    assert "X-Puzzel-Monitor-Signature" not in headers
