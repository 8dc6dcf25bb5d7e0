"""What the benchmarks share: results, timers, a private redis-server, the simulator on loopback,
a tenant configuration pointing at it, and an EngineView over one or more pipelines."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from monitor.app.config import CadencesConfig, RateLimitConfig, TenantConfig
from monitor.app.testing import RedisServer
from monitor.simulator.app import create_app, tenant_settings
from monitor.simulator.simulator import Simulator

T = TypeVar("T")

# A Tuesday, 10:00 in Oslo: mid-shift for the random centre, so most agents are logged on.
BENCH_START = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
STATE_CADENCE = 5.0
QUEUE_CADENCE = 15.0
TICKER_CADENCE = 60.0


@dataclass
class Figure:
    """One line of the table."""

    name: str
    value: float | None
    unit: str
    ratio: float | None = None  # value / the machine-independent reference, when one exists
    ratio_of: str = ""  # what the ratio is against ("orjson floor", "per-agent poller")
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class BenchResult:
    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None

    def add(self, *args: Any, **kwargs: Any) -> Figure:
        fig = Figure(*args, **kwargs)
        self.figures.append(fig)
        return fig

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


@dataclass
class Timing:
    cpu: float = 0.0
    wall: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """CPU (this process, all threads) and wall seconds of the block."""
    t = Timing()
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        yield t
    finally:
        t.cpu = time.process_time() - c0
        t.wall = time.perf_counter() - w0


def rss_bytes() -> int:
    """Resident set size now, from /proc/self/status (falls back to the peak from getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class RedisProcess(RedisServer):
    """A private redis-server for the benchmarks. No persistence: they measure the monitor's
    side of a write, not the disk."""

    def __init__(self) -> None:
        super().__init__(persist=False)


class SimServer:
    """The simulator served over real HTTP on loopback."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.runner = web.AppRunner(create_app(sim), access_log=None)
        self.base = ""

    async def __aenter__(self) -> SimServer:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def tenant_config(
    sim: Simulator,
    base: str,
    *,
    customer_key: str | None = None,
    user_state_budget: int = 10,
    queues: float | None = QUEUE_CADENCE,
    tickers: float | None = TICKER_CADENCE,
    virtual: bool = True,
    combined_state_call: bool = True,
) -> TenantConfig:
    """A tenant of the simulator at `base`, with the shipped cadences (5 s states, 15 s queues,
    60 s tickers) unless told otherwise. On a virtual clock the client's rate limit is lifted:
    the clock does not move while a poll runs, so a real limit would stall it."""
    rate = (
        RateLimitConfig(requests_per_second=1e6, burst=1_000_000) if virtual else RateLimitConfig()
    )
    settings = tenant_settings(sim, base)
    if customer_key is not None:
        settings["customer_key"] = customer_key
    return TenantConfig.model_validate(
        {
            **settings,
            "user_groups": "all",
            "visual_queues": "all",
            "combined_state_call": combined_state_call,
            "cadences": CadencesConfig(
                user_states=STATE_CADENCE,
                queues=queues,
                agent_stats=tickers,
                queue_ticker=tickers,
                access_points=tickers,
                jitter=0,
            ),
            "user_state_budget": user_state_budget,
            "rate_limit": rate,
            # in virtual time the in-process simulator's real serving time must not count as a
            # Puzzel timeout (100 concurrent 10,000-agent answers take seconds of real CPU)
            "request_timeout": 600.0 if virtual else 10.0,
        }
    )


def constant(value: T) -> Callable[[], T]:
    """A function returning `value` (binds it now, unlike a lambda over a loop variable)."""
    return lambda: value


def groups_for(agents: int) -> int:
    """User groups for a centre of `agents`: teams of about 50, at least 2, at most 100."""
    return max(2, min(100, agents // 50))


def machine() -> dict[str, Any]:
    import platform  # noqa: PLC0415 - only the report needs it

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
    }
