"""The cadence scheduler in virtual time (and one short real-time check)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.clock import SystemClock, VirtualClock
from monitor.ingest.cadence import Scheduler

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def test_steady_cadence_without_jitter() -> None:
    """Runs land exactly on start + k * interval."""
    clock = VirtualClock(T0)
    sched = Scheduler(clock)
    times: list[float] = []

    async def job() -> None:
        times.append(clock.monotonic())

    sched.add("a", job, 5.0)
    await sched.run_until(T0 + timedelta(seconds=22))
    assert times == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert clock.now() == T0 + timedelta(seconds=22)


async def test_jitter_is_a_fixed_seeded_phase_per_job() -> None:
    """With jitter each job runs at slot + its own phase in [0, jitter): intervals stay exact,
    jobs are spread apart, and the same seed gives the same times."""

    async def run(seed: int) -> tuple[list[float], list[float]]:
        clock = VirtualClock(T0)
        sched = Scheduler(clock, seed=seed)
        a: list[float] = []
        b: list[float] = []

        async def job_a() -> None:
            a.append(clock.monotonic())
            await clock.sleep(0.3)  # a run that takes time does not push the cadence

        async def job_b() -> None:
            b.append(clock.monotonic())

        sched.add("a", job_a, 5.0, jitter=1.0)
        sched.add("b", job_b, 5.0, jitter=1.0)
        await sched.run_until(T0 + timedelta(seconds=100))
        return a, b

    a, b = await run(7)
    assert len(a) == 20
    phase = a[0]
    assert 0.0 <= phase < 1.0
    for k, t in enumerate(a):
        assert t == pytest.approx(5.0 * k + phase)  # exact interval: no drift, no stretch
    assert b[0] != pytest.approx(phase)  # another job, another phase
    assert (a, b) == await run(7)
    assert (a, b) != await run(8)


async def test_overrun_is_counted_not_queued() -> None:
    """A run longer than the interval skips the slots it overlaps and counts them."""
    clock = VirtualClock(T0)
    sched = Scheduler(clock)
    starts: list[float] = []

    async def slow() -> None:
        starts.append(clock.monotonic())
        if len(starts) == 1:
            await clock.sleep(12.0)  # covers the slots at 5 and 10

    job = sched.add("slow", slow, 5.0)
    await sched.run_until(T0 + timedelta(seconds=21))
    assert starts == [0.0, 15.0, 20.0]
    assert job.stats.overruns == 2
    assert job.stats.runs == 3


async def test_postpone_on_429_moves_the_next_run() -> None:
    """postpone() during a run makes the next run wait Retry-After, then the cadence resumes."""
    clock = VirtualClock(T0)
    sched = Scheduler(clock)
    starts: list[float] = []

    async def job() -> None:
        starts.append(clock.monotonic())
        if len(starts) == 2:
            sched.postpone("j", 12.0)
            raise RuntimeError("429")

    sched.add("j", job, 5.0, backoff_after=10)
    await sched.run_until(T0 + timedelta(seconds=30))
    assert starts == [0.0, 5.0, 17.0, 22.0, 27.0]
    assert sched.job("j").stats.postponements == 1


async def test_postpone_when_idle() -> None:
    """postpone() between runs delays the next slot."""
    clock = VirtualClock(T0)
    sched = Scheduler(clock)
    starts: list[float] = []

    async def job() -> None:
        starts.append(clock.monotonic())

    sched.add("j", job, 5.0)
    await sched.run_until(T0 + timedelta(seconds=1))
    sched.postpone("j", 9.0)
    await sched.run_until(T0 + timedelta(seconds=16))
    assert starts == [0.0, 10.0, 15.0]


async def test_backoff_doubles_to_a_cap_and_resets_on_success() -> None:
    """After repeated failures the interval doubles up to max_interval; success resets it."""
    clock = VirtualClock(T0)
    sched = Scheduler(clock)
    starts: list[float] = []
    healthy_from = 100.0

    async def job() -> None:
        starts.append(clock.monotonic())
        if clock.monotonic() < healthy_from:
            raise RuntimeError("down")

    job_ = sched.add("j", job, 5.0, backoff_after=2, max_interval=30.0)
    await sched.run_until(T0 + timedelta(seconds=130))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # 1st failure: normal; 2nd: x2; 3rd: x4; 4th: x8 capped at 30
    assert gaps[:5] == [5.0, 10.0, 20.0, 30.0, 30.0]
    first_ok = next(i for i, t in enumerate(starts) if t >= healthy_from)
    assert gaps[first_ok:] == [5.0] * len(gaps[first_ok:])
    assert job_.stats.consecutive_failures == 0
    assert job_.stats.failures == first_ok


async def test_jobs_due_together_run_concurrently_and_are_awaited() -> None:
    """In virtual mode all runs due at one time are launched together and awaited before the
    clock moves on."""
    clock = VirtualClock(T0)
    sched = Scheduler(clock)
    log: list[tuple[str, float]] = []
    barrier = asyncio.Event()

    async def a() -> None:
        log.append(("a", clock.monotonic()))
        await barrier.wait()

    async def b() -> None:
        log.append(("b", clock.monotonic()))
        barrier.set()

    sched.add("a", a, 10.0)
    sched.add("b", b, 10.0)
    await sched.run_until(T0 + timedelta(seconds=15))
    assert log == [("a", 0.0), ("b", 0.0), ("a", 10.0), ("b", 10.0)]


async def test_real_time_mode_runs_and_drains() -> None:
    """With the system clock runs are tasks; stop() + drain() waits for the run in flight."""
    clock = SystemClock()
    sched = Scheduler(clock)
    started = asyncio.Event()
    finished: list[bool] = []

    async def job() -> None:
        started.set()
        await asyncio.sleep(0.05)
        finished.append(True)

    sched.add("j", job, 60.0)
    loop = asyncio.create_task(sched.run_forever())
    await asyncio.wait_for(started.wait(), 5)
    sched.stop()
    await asyncio.wait_for(loop, 5)
    assert await sched.drain(5.0) is True
    assert finished == [True]


async def test_drain_cancels_after_grace() -> None:
    """A run still going after the grace period is cancelled."""
    sched = Scheduler(SystemClock())
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def job() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    sched.add("j", job, 60.0)
    loop = asyncio.create_task(sched.run_forever())
    await asyncio.wait_for(started.wait(), 5)
    sched.stop()
    await loop
    assert await sched.drain(0.05) is False
    assert cancelled == [True]


async def test_run_forever_refuses_a_virtual_clock() -> None:
    """A virtual-clock scheduler must be driven by run_until, never run_forever."""
    sched = Scheduler(VirtualClock(T0))
    with pytest.raises(RuntimeError, match="run_until"):
        await sched.run_forever()
