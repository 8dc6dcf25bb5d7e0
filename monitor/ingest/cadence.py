"""A cadence scheduler: runs jobs every `interval` seconds on the injected clock.

Rules, for each job:

- Steady cadence: slots are `start, start + interval, start + 2 * interval, ...`; the next slot
  is the previous *slot* plus the interval, not the previous completion plus the interval, so a
  slow run does not make the cadence drift.
- Jitter: each job gets one random phase in `[0, jitter)` (drawn once from a seeded
  `random.Random`) and every run starts at its slot plus that phase. Tenants and endpoint kinds
  do not hit Puzzel in lock-step, yet each job keeps an exact interval between runs, so jitter
  never stretches the time to notice a change beyond one interval; a replay is reproducible.
- Never two runs of one job at once: a slot that comes due while the previous run is still going
  is skipped and counted in `JobStats.overruns` (not queued behind it).
- `postpone(job, seconds)`: the next run is no earlier than now + seconds (a 429's Retry-After);
  the cadence re-anchors there.
- Backoff: after `backoff_after` consecutive failures (a run that raises), the interval doubles
  per further failure up to `max_interval`; the first success resets it.

Two modes, chosen by the clock:

- **Virtual** (`monitor.core.clock.VirtualClock`, for replay and tests): `run_until(end)` moves the
  clock itself to the next due time, launches every job due then, and awaits *all* of them before
  moving the clock again. Nothing runs concurrently with a clock move, so a replay is
  deterministic. A run that itself advances the clock (a `clock.sleep` inside it) past its own
  next slots gets those slots counted as overruns, as in real time.
- **Real** (any other clock, e.g. `SystemClock`): `run_until(end)` / `run_forever()` sleep until the
  next due time and launch runs as tasks, so a slow job never delays the others. `stop()` ends the
  loop; `drain(grace)` waits for the runs in flight and cancels what is left after `grace` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from monitor.core.clock import Clock, VirtualClock

log = structlog.get_logger("monitor.ingest.cadence")

JobFunc = Callable[[], Awaitable[object]]


@dataclass(slots=True)
class JobStats:
    runs: int = 0  # runs started
    failures: int = 0  # runs that raised
    overruns: int = 0  # slots skipped because the previous run was still going
    consecutive_failures: int = 0
    postponements: int = 0
    last_started: float | None = None  # clock.monotonic() values
    last_finished: float | None = None
    last_error: str | None = None


@dataclass(slots=True)
class Job:
    name: str
    func: JobFunc
    interval: float
    jitter: float = 0.0
    phase: float = 0.0  # this job's fixed offset in [0, jitter), drawn once
    backoff_after: int = 3
    max_interval: float = 300.0
    stats: JobStats = field(default_factory=JobStats)
    # scheduling state (clock.monotonic() seconds)
    slot: float = 0.0  # the slot of the next run, before jitter
    due: float = 0.0  # slot + phase
    running: asyncio.Task[None] | None = None
    postponed_until: float | None = None
    order: int = 0

    @property
    def effective_interval(self) -> float:
        """The interval now, after any failure backoff."""
        excess = self.stats.consecutive_failures - self.backoff_after + 1
        if excess <= 0:
            return self.interval
        return min(self.interval * (2.0**excess), max(self.max_interval, self.interval))


class Scheduler:
    """Runs jobs on cadences; see the module docstring for the rules and the two modes."""

    def __init__(self, clock: Clock, *, seed: int | None = 0) -> None:
        self.clock = clock
        self.virtual = isinstance(clock, VirtualClock)
        self._rng = random.Random(seed)
        self._jobs: dict[str, Job] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- set-up -----------------------------------------------------------------------------

    def add(
        self,
        name: str,
        func: JobFunc,
        interval: float,
        *,
        jitter: float = 0.0,
        first_run_in: float = 0.0,
        backoff_after: int = 3,
        max_interval: float | None = None,
    ) -> Job:
        """Add a job whose first slot is `first_run_in` seconds from now."""
        if interval <= 0:
            raise ValueError(f"job {name!r}: interval must be positive, got {interval!r}")
        if name in self._jobs:
            raise ValueError(f"job {name!r} already exists")
        job = Job(
            name,
            func,
            float(interval),
            jitter=max(0.0, min(float(jitter), float(interval))),
            backoff_after=max(1, backoff_after),
            max_interval=max_interval if max_interval is not None else max(interval * 8, 300.0),
            order=len(self._jobs),
        )
        job.phase = self._rng.uniform(0.0, job.jitter) if job.jitter > 0 else 0.0
        job.slot = self.clock.monotonic() + first_run_in
        job.due = job.slot + self._draw(job)
        self._jobs[name] = job
        self._wake.set()
        return job

    def remove(self, name: str) -> asyncio.Task[None] | None:
        """Take a job off the schedule; returns its run in flight (if any), left to finish."""
        job = self._jobs.pop(name, None)
        return job.running if job is not None else None

    @property
    def jobs(self) -> dict[str, Job]:
        return dict(self._jobs)

    def job(self, name: str) -> Job:
        return self._jobs[name]

    def postpone(self, name: str, seconds: float) -> None:
        """Make the next run of `name` no earlier than `seconds` from now (e.g. Retry-After)."""
        job = self._jobs[name]
        until = self.clock.monotonic() + max(0.0, seconds)
        job.stats.postponements += 1
        if job.running is not None:
            job.postponed_until = max(job.postponed_until or until, until)
        elif until > job.slot:
            job.slot = until
            job.due = until
        self._wake.set()

    def _draw(self, job: Job) -> float:
        return job.phase

    # --- running ----------------------------------------------------------------------------

    def _next_due(self) -> Job | None:
        idle = [j for j in self._jobs.values() if j.running is None]
        if not idle:
            return None
        return min(idle, key=lambda j: (j.due, j.order))

    def _launch(self, job: Job) -> asyncio.Task[None]:
        job.stats.runs += 1
        job.stats.last_started = self.clock.monotonic()
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"job:{job.name}")
        job.running = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, job: Job) -> None:
        slot = job.slot
        ok = False
        try:
            await job.func()
            ok = True
        except asyncio.CancelledError:
            raise
        except Exception as e:
            job.stats.failures += 1
            job.stats.consecutive_failures += 1
            job.stats.last_error = f"{type(e).__name__}: {e}"
            log.debug("job failed", job=job.name, error=job.stats.last_error)
        finally:
            if ok:
                job.stats.consecutive_failures = 0
            self._finish(job, slot)

    def _finish(self, job: Job, slot: float) -> None:
        now = self.clock.monotonic()
        job.stats.last_finished = now
        job.running = None
        nxt = slot + job.effective_interval
        due = nxt + self._draw(job)
        # slots that came due while this run was going are overruns: skipped, not queued
        while due < now - 1e-9:
            job.stats.overruns += 1
            nxt += job.effective_interval
            due = nxt + self._draw(job)
        if job.postponed_until is not None and job.postponed_until > due:
            nxt = due = job.postponed_until
        job.postponed_until = None
        job.slot = nxt
        job.due = due
        self._wake.set()

    def _catch_up(self, job: Job, now: float) -> None:
        """A job found late without a run in flight (the loop was not running) runs now once."""
        if job.due < now - job.effective_interval:
            behind = int((now - job.slot) // job.effective_interval)
            job.slot += behind * job.effective_interval
            job.due = min(job.due + behind * job.effective_interval, now)

    async def run_until(self, end: datetime) -> None:
        """Run jobs until the clock reads `end` (virtual: moves the clock; real: waits)."""
        end_mono = self.clock.monotonic() + (end - self.clock.now()).total_seconds()
        if self.virtual:
            await self._run_virtual(end_mono)
        else:
            await self._run_real(end_mono)

    async def run_for(self, seconds: float) -> None:
        await self.run_until(self.clock.now() + timedelta(seconds=seconds))

    async def run_forever(self) -> None:
        """Real-time mode until `stop()`. A virtual clock is driven with `run_until` instead."""
        if self.virtual:
            raise RuntimeError("a scheduler on a VirtualClock is driven by run_until(end)")
        await self._run_real(None)

    async def _run_virtual(self, end: float) -> None:
        clock = self.clock
        assert isinstance(clock, VirtualClock)
        while not self._stopping:
            job = self._next_due()
            if job is None or job.due > end:
                break
            now = clock.monotonic()
            if job.due > now:
                clock.advance(job.due - now)
            # the clock keeps microseconds: compare with the target, not the rounded clock
            target = max(job.due, now)
            batch = sorted(
                (j for j in self._jobs.values() if j.running is None and j.due <= target),
                key=lambda j: (j.due, j.order),
            )
            tasks = [self._launch(j) for j in batch]
            await asyncio.gather(*tasks, return_exceptions=True)
        now = clock.monotonic()
        if end > now and not self._stopping:
            clock.advance(end - now)

    async def _run_real(self, end: float | None) -> None:
        while not self._stopping:
            now = self.clock.monotonic()
            if end is not None and now >= end:
                break
            job = self._next_due()
            if job is not None and job.due <= now:
                self._catch_up(job, now)
                self._launch(job)
                continue
            wait = None if job is None else job.due - now
            if end is not None:
                wait = end - now if wait is None else min(wait, end - now)
            self._wake.clear()
            await self._wait(wait)

    async def _wait(self, seconds: float | None) -> None:
        waker = asyncio.ensure_future(self._wake.wait())
        if seconds is None:
            await waker
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({waker, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (waker, sleeper):
                if not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t

    def stop(self) -> None:
        """Stop launching runs (runs in flight continue; see `drain`)."""
        self._stopping = True
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, grace: float) -> bool:
        """Wait up to `grace` real seconds for runs in flight, then cancel the rest.

        Returns True when everything finished on its own.
        """
        pending = set(self._tasks)
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
        return not still
