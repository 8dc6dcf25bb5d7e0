"""`puzzel-monitor demo` as a command: exit codes, signals, a taken port, --speed."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
READY = "alerts, one line each"


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "demo", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
    )


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    pytest.fail(f"never printed {marker!r}; got {lines}")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_a_signal_stops_the_demo_cleanly(sig: signal.Signals, code: int) -> None:
    """Ctrl-C (SIGINT) stops the demo as interrupted (130), SIGTERM as a clean stop (0); no
    traceback either way."""
    proc = _start("--port", str(free_port()))
    try:
        _read_until(proc, READY)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert "Traceback" not in err + out


def test_a_taken_metrics_port_is_a_clear_error_with_exit_3() -> None:
    """When --port is in use the demo says so, names the port, and exits 3."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = _start("--port", str(port), "--duration", "5")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert f"127.0.0.1:{port}" in err
    assert "--port" in err
    assert "Traceback" not in err
    assert "firing" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "3"], "--agents"),
        (["--speed", "0"], "--speed"),
        (["--port", "70000"], "--port"),
    ],
)
def test_bad_options_exit_2(args: list[str], message: str) -> None:
    """Out-of-range options are refused before anything starts, naming the option."""
    proc = _start(*args)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert message in err


def test_speed_runs_the_scripted_day_faster() -> None:
    """With --speed 20 the incidents of the first simulated minutes fire and resolve within a
    few real seconds."""
    proc = _start("--port", str(free_port()), "--speed", "20", "--duration", "10")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "20x speed" in out
    assert "firing   break_overrun" in out
    assert "resolved break_overrun" in out


async def test_a_real_redis_holds_the_demo_under_its_own_prefix(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    """With --redis-url the demo keeps its schedules, engine state and outbox in that Redis,
    under `pzm-demo:` only, after clearing what an earlier demo left there."""
    await redis_client.set("pzm-demo:leftover", "old")
    await redis_client.set("pzm:tenant-data", "untouched")
    proc = _start(
        *("--port", str(free_port()), "--redis-url", redis_server.url),
        *("--speed", "20", "--duration", "6"),
    )
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err
    assert "firing" in out
    keys = {k.decode() for k in await redis_client.keys("*")}
    assert "pzm-demo:leftover" not in keys
    assert "pzm:tenant-data" in keys
    demo_keys = {k for k in keys if k.startswith("pzm-demo:")}
    assert any(":sched:" in k for k in demo_keys), demo_keys
    assert "pzm-demo:12345:engine:fields" in demo_keys
    assert keys - demo_keys == {"pzm:tenant-data"}


@pytest.mark.skipif(
    shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "puzzel-monitor").exists(),
    reason="needs make and the repository's .venv (make deps)",
)
def test_make_demo_passes_args_through() -> None:
    """`make demo ARGS="--port P --duration 2"` runs the demo on port P and stops by itself."""
    port = free_port()
    done = subprocess.run(
        # -o deps: the test must not reinstall the venv when pyproject.toml has changed
        ["make", "-s", "-o", "deps", "demo", f"ARGS=--port {port} --duration 2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"http://127.0.0.1:{port}/metrics" in done.stdout
