"""Injectable clocks: production, tests and `replay` run the same code in real or virtual time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What every component needs to know about time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for intervals and deadlines)."""

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` of this clock's time."""


class SystemClock:
    """Wall-clock time and real sleeping."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that moves only when told to.

    `sleep` advances virtual time by the amount asked for and yields to the event loop once, so
    a single driver (the replay scheduler, a test) runs in virtual time without real waiting.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._origin = self._now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._origin).total_seconds()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.set(self._now + timedelta(seconds=seconds))
        await asyncio.sleep(0)

    def set(self, when: datetime) -> None:
        """Move the clock forward to `when` (never backwards)."""
        self._now = max(self._now, when.astimezone(UTC))

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))
