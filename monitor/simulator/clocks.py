"""A clock for serving the simulator standalone: real time, shifted to a chosen start and
optionally sped up (a scenario plays from its own start; `--speed 60` runs an hour a minute)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.core.clock import Clock, SystemClock


class ShiftedClock:
    """`start + (elapsed real time) * speed`."""

    def __init__(self, start: datetime, speed: float = 1.0, base: Clock | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._base = base or SystemClock()
        self._origin = self._base.monotonic()

    def monotonic(self) -> float:
        return (self._base.monotonic() - self._origin) * self.speed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds / self.speed)
