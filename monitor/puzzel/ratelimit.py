"""A token-bucket rate limiter on the injected clock, one per tenant.

`BucketState` + `take` are the pure core (how long must this request wait?); `RateLimiter` is the
async shell that sleeps through the clock. Requests are admitted in arrival order. A bucket holds
at most `burst` tokens and refills at `rate` tokens per second, so over any window of T seconds at
most `burst + rate * T` requests start.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from monitor.core.clock import Clock, SystemClock

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated: float  # clock.monotonic() of the last update
    blocked_until: float = float("-inf")  # no admissions before this (a 429's Retry-After)


def refill(state: BucketState, now: float, rate: float, burst: int) -> BucketState:
    """The state at `now` after refilling since `state.updated`."""
    if now <= state.updated:
        return state
    tokens = min(float(burst), state.tokens + (now - state.updated) * rate)
    return BucketState(tokens, now, state.blocked_until)


def take(state: BucketState, now: float, rate: float, burst: int) -> tuple[BucketState, float]:
    """Take one token at `now`: (new state, 0.0) on success, else (state, seconds to wait)."""
    state = refill(state, now, rate, burst)
    if now < state.blocked_until:
        return state, state.blocked_until - now
    # The epsilon absorbs float rounding: after waiting exactly the asked time the refill may
    # come out a hair under one token, and asking for ever-smaller waits would never end.
    if state.tokens >= 1.0 - _EPSILON:
        return BucketState(max(0.0, state.tokens - 1.0), now, state.blocked_until), 0.0
    return state, (1.0 - state.tokens) / rate


class RateLimiter:
    """At most `rate` requests per second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Clock | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = rate
        self.burst = burst
        self._clock: Clock = clock or SystemClock()
        self._state = BucketState(float(burst), self._clock.monotonic())
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait (on the clock) until a request may start, then count it."""
        async with self._lock:  # one waiter at a time: FIFO admission
            while True:
                self._state, wait = take(
                    self._state, self._clock.monotonic(), self.rate, self.burst
                )
                if wait <= 0:
                    return
                await self._clock.sleep(wait)

    def block_for(self, seconds: float) -> None:
        """Admit nothing for `seconds` (Puzzel said Retry-After) and drop any saved-up burst."""
        now = self._clock.monotonic()
        until = now + max(0.0, seconds)
        s = refill(self._state, now, self.rate, self.burst)
        blocked_until = max(s.blocked_until, until)
        # After a 429 a saved-up burst would just trigger another one: resume from one token,
        # refilling only from the end of the block.
        self._state = BucketState(min(s.tokens, 1.0), max(now, blocked_until), blocked_until)

    def available(self) -> float:
        """Tokens available now (for tests and diagnostics)."""
        return refill(self._state, self._clock.monotonic(), self.rate, self.burst).tokens
