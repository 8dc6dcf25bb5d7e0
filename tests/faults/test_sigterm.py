"""SIGTERM (through `serve`, as `puzzel-monitor run` handles it) while a slow receiver is taking
the first of three messages, five times, each time a new monitor on the same Redis: every stop
exits 0 and starts no new message once it began, and across the restarts every firing and
every resolve reaches the receiver exactly once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from monitor.app.service import serve
from tests.alerts.helpers import Receiver
from tests.faults.harness import Break, start_rig, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (make test installs it when run as root)",
)

SLOW = 1.0  # the receiver has the message at once but answers after this long
GRACE = 3.0
ROUNDS = 5
TEAMS = ("Support", "Sales", "Billing")
# per round, one break overrun in each team at once (three messages), rounds 6 s apart;
# everyone is back afterwards
BREAKS = [
    Break(str(2000 + 10 * i + t), ends=3 + 6 * i, back=6 * ROUNDS + 12, group=team)
    for i in range(ROUNDS)
    for t, team in enumerate(TEAMS)
]


@dataclass
class SlowReceiver(Receiver):
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        response = await super().handle(request)  # recorded (and acted on) at arrival
        self.arrived.set()
        await asyncio.sleep(SLOW)
        return response


async def test_sigterm_during_slow_delivery_five_times() -> None:
    server = RedisServer(persist=True)
    await asyncio.to_thread(server.start)
    receiver = SlowReceiver()
    rig = await start_rig(BREAKS, server.url, receiver=receiver, start=False)
    codes: list[int] = []
    started_while_stopping = 0
    try:
        for _ in range(ROUNDS):
            monitor = rig.new_monitor() if codes else rig.monitor
            receiver.arrived.clear()
            running = asyncio.create_task(serve(monitor, grace=GRACE))
            await asyncio.wait_for(receiver.arrived.wait(), 30)  # a message is being taken
            before = len(receiver.requests)
            os.kill(os.getpid(), signal.SIGTERM)
            codes.append(await running)
            started_while_stopping += len(receiver.requests) - before
        rig.new_monitor()
        await rig.monitor.start()
        await wait_for(
            "every resolve", lambda: all(rig.count(b.agent, "resolved") for b in BREAKS), 60
        )
        await asyncio.sleep(SLOW + 1)  # anything sent twice would arrive now
    finally:
        await rig.close()
        await asyncio.to_thread(server.cleanup)

    delivered = rig.delivered()
    print(f"exit codes {codes}; requests {len(receiver.requests)}; {sorted(delivered.items())}")
    assert codes == [0] * ROUNDS
    assert started_while_stopping == 0
    for b in BREAKS:
        assert rig.count(b.agent, "firing") == 1, b
        assert rig.count(b.agent, "resolved") == 1, b
