"""The token bucket: pure admission math and the async limiter in virtual time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.clock import VirtualClock
from monitor.puzzel.ratelimit import BucketState, RateLimiter, take

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def max_in_window(times: list[float], window: float) -> int:
    """The most timestamps in any half-open window [t, t + window)."""
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] < t - window + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_take_spends_burst_then_asks_to_wait() -> None:
    """A full bucket admits `burst` at once, then asks for 1/rate seconds."""
    state = BucketState(3.0, 0.0)
    waits = []
    for _ in range(4):
        state, wait = take(state, 0.0, rate=2.0, burst=3)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 0.5]


def test_take_respects_block() -> None:
    """While blocked by Retry-After nothing is admitted, whatever the tokens."""
    state = BucketState(5.0, 0.0, blocked_until=2.0)
    _, wait = take(state, 0.5, rate=1.0, burst=5)
    assert wait == pytest.approx(1.5)


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=60))
def test_bucket_never_exceeds_rate_plus_burst(gaps: list[float]) -> None:
    """Whatever the arrival pattern, admissions in any window T are <= burst + rate*T."""
    rate, burst = 4.0, 3
    state = BucketState(float(burst), 0.0)
    now = 0.0
    admitted: list[float] = []
    for gap in gaps:
        now += gap
        state, wait = take(state, now, rate, burst)
        while wait > 0:
            now += wait
            state, wait = take(state, now, rate, burst)
        admitted.append(now)
    for window in (0.25, 1.0, 3.0):
        assert max_in_window(admitted, window) <= burst + rate * window + 1e-6


async def test_limiter_spaces_requests_in_virtual_time() -> None:
    """25 back-to-back acquires at 10/s with burst 5 take ~2 virtual seconds, in FIFO order."""
    clock = VirtualClock(START)
    limiter = RateLimiter(10.0, 5, clock)
    times: list[float] = []
    order: list[int] = []

    async def one(i: int) -> None:
        await limiter.acquire()
        times.append(clock.monotonic())
        order.append(i)

    await asyncio.gather(*(one(i) for i in range(25)))
    assert order == list(range(25))
    assert times[:5] == [0.0] * 5
    assert times[-1] == pytest.approx(2.0)
    assert max_in_window(times, 1.0) <= 5 + 10


async def test_block_for_holds_everyone_and_drops_saved_burst() -> None:
    """After block_for(3) the next admission is at t=3 and only one token is ready."""
    clock = VirtualClock(START)
    limiter = RateLimiter(1.0, 10, clock)
    limiter.block_for(3.0)
    await limiter.acquire()
    assert clock.monotonic() == pytest.approx(3.0)
    assert limiter.available() == pytest.approx(0.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (1.0, 0)])
def test_invalid_settings_rejected(rate: float, burst: int) -> None:
    """A zero rate or an empty bucket is a configuration error."""
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(rate, burst, VirtualClock(START))
