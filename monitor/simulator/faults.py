"""Fault injection for the simulator, mutable while it serves.

Latency applies to every response. Throttling (429 bursts), the 5xx rate, malformed bodies and
stalls apply to ContactCentre5 API requests, and to the auth endpoints too when `include_auth`
is set. Random faults draw from their own seeded generator, so a test run is reproducible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request."""

    stall_seconds: float = 0.0
    status: int | None = None  # 429 or a 5xx to answer instead of the real response
    retry_after: int | None = None  # seconds, for a 429
    malformed: bool = False


@dataclass
class Faults:
    latency: float = 0.0  # seconds added to every response (real time)
    error_rate: float = 0.0  # fraction of requests answered 500/502/503
    malformed_rate: float = 0.0  # fraction of 200 responses whose JSON body is cut short
    legacy_dates: bool = False  # accessTokenExpiry and sessionTime as /Date(ms+0000)/
    token_ttl: timedelta = timedelta(hours=1)  # lifetime of access tokens issued from now on
    session_ttl: timedelta = timedelta(hours=12)  # lifetime of LogIn refresh sessions
    include_auth: bool = False  # also apply 429/5xx/malformed/stalls to the auth endpoints
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _throttle_left: int = field(default=0, init=False)
    _retry_after: int = field(default=1, init=False)
    _stall_left: int = field(default=0, init=False)
    _stall_seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def throttle(self, requests: int, retry_after: float = 1.0) -> None:
        """Answer the next `requests` requests with 429 and `Retry-After: retry_after`."""
        self._throttle_left = max(0, requests)
        self._retry_after = max(0, math.ceil(retry_after))

    def stall(self, requests: int, seconds: float) -> None:
        """Hold the next `requests` responses for `seconds` (to run past a client's timeout)."""
        self._stall_left = max(0, requests)
        self._stall_seconds = max(0.0, seconds)

    @property
    def throttled_remaining(self) -> int:
        return self._throttle_left

    def clear(self) -> None:
        """Back to a healthy service (keeps the token lifetimes and date format)."""
        self.latency = self.error_rate = self.malformed_rate = 0.0
        self._throttle_left = self._stall_left = 0

    def decide(self) -> FaultDecision:
        """Draw the faults for one request (consumes the throttle/stall counters)."""
        stall = 0.0
        if self._stall_left > 0:
            self._stall_left -= 1
            stall = self._stall_seconds
        if self._throttle_left > 0:
            self._throttle_left -= 1
            return FaultDecision(stall, 429, self._retry_after)
        if self.error_rate > 0 and self._rng.random() < self.error_rate:
            return FaultDecision(stall, self._rng.choice((500, 502, 503)))
        malformed = self.malformed_rate > 0 and self._rng.random() < self.malformed_rate
        return FaultDecision(stall, None, None, malformed)
