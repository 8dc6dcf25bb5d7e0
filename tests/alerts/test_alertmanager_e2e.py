"""End to end through a real Alertmanager: our v2 sink posts, Alertmanager's webhook delivers."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web

from monitor.alerts.outbox import Dispatcher, Outbox
from monitor.alerts.sinks.alertmanager import AlertmanagerResender, AlertmanagerSink
from monitor.core.clock import SystemClock
from tests.alerts.helpers import Receiver, alert
from tests.redis_server import free_port

AM = "/usr/bin/prometheus-alertmanager"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path(AM).exists(),
        reason=f"{AM} is not installed (apt-get install prometheus-alertmanager)",
    ),
]


def am_config(receiver_url: str) -> dict[str, object]:
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "team"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "hook", "webhook_configs": [{"url": receiver_url, "send_resolved": True}]}
        ],
    }


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    runner = web.AppRunner(receiver.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield receiver, f"http://127.0.0.1:{port}/am"
    await runner.cleanup()


@pytest.fixture
def alertmanager(hook: tuple[Receiver, str], tmp_path: Path) -> Iterator[str]:
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(yaml.safe_dump(am_config(hook[1])))
    if Path(AMTOOL).exists():
        check = subprocess.run(
            [AMTOOL, "check-config", str(cfg)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    proc = subprocess.Popen(
        [
            AM,
            f"--config.file={cfg}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("alertmanager did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


async def wait_until(cond: object, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_alert_fires_and_resolves_through_alertmanager(
    alertmanager: str, hook: tuple[Receiver, str], redis_client: aioredis.Redis
) -> None:
    """A firing alert reaches Alertmanager's webhook receiver, then its resolve follows."""
    receiver, _ = hook
    clock = SystemClock()
    sink = AlertmanagerSink(alertmanager)
    outbox = Outbox(redis_client, sinks=["am"], clock=clock)
    firing = alert("1001")

    def statuses() -> list[tuple[str, str]]:
        return [
            (a["labels"].get("agent", ""), a["status"])
            for p in receiver.accepted
            for a in p["alerts"]
        ]

    try:
        async with Dispatcher(
            outbox, {"am": sink}, clock=clock, poll_interval=0.05, group_wait=timedelta(0)
        ):
            await outbox.publish([firing])
            await wait_until(lambda: ("1001", "firing") in statuses())
            # the re-sender keeps it alive without creating a new notification
            assert await AlertmanagerResender(sink, outbox.store, clock=clock).resend_once() == 1
            await outbox.publish([alert("1001", status="resolved")])
            await wait_until(lambda: ("1001", "resolved") in statuses())
    finally:
        await sink.close()
    first = receiver.accepted[0]
    assert first["version"] == "4"
    assert first["alerts"][0]["labels"]["alertname"] == "break_overrun"
    assert first["alerts"][0]["annotations"]["summary"] == firing.annotations["summary"]
    assert statuses().index(("1001", "firing")) < statuses().index(("1001", "resolved"))
