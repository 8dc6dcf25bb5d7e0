"""`puzzel-monitor simulate` as a real process: serves 1000 agents, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import aiohttp

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def command() -> list[str]:
    script = ROOT / ".venv" / "bin" / "puzzel-monitor"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "monitor"]  # not installed yet: the same entry point


async def wait_until_up(url: str, proc: asyncio.subprocess.Process, deadline: float) -> None:
    async with aiohttp.ClientSession() as http:
        while True:
            assert proc.returncode is None, "the simulator exited early"
            try:
                async with http.get(url) as r:
                    await r.read()
                    return
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def test_simulate_serves_1000_agents_and_exits_0_on_sigterm() -> None:
    """The standalone simulator answers LogIn and a 1000-agent group-state call over HTTP."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *command(),
        "simulate",
        "--agents",
        "1000",
        "--port",
        str(port),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        root = f"http://127.0.0.1:{port}"
        await wait_until_up(
            root + "/ContactCentre5/accesstokeninformation", proc, time.monotonic() + 30
        )
        async with aiohttp.ClientSession() as http:
            async with http.post(
                root + "/auth/api/Authenticate/LogIn",
                json={
                    "customerKey": "12345",
                    "userName": "api.monitor",
                    "password": "simulated-password",
                },
            ) as r:
                assert r.status == 200
                token = (await r.json())["accessToken"]
            async with http.get(
                root + "/ContactCentre5/12345/users/stateinformation/Today",
                headers={"Authorization": f"Bearer {token}"},
                params={"userId": "100001"},
            ) as r:
                assert r.status == 200
                rows = (await r.json())["result"]
        assert len(rows) == 1000
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
        assert proc.returncode == 0, err.decode()
        text = out.decode()
        assert f"{root}/ContactCentre5" in text
        assert "simulated-password" in text  # the credentials to use are printed
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
