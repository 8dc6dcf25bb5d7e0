"""Random mode: a seeded contact centre that is deterministic and behaves like a shift day."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.core.clock import VirtualClock
from monitor.core.states import StateKind
from monitor.engine.model import Segment
from monitor.simulator import Simulator
from monitor.simulator.centre import Behaviour, CentreConfig, RandomCentre

OSLO = ZoneInfo("Europe/Oslo")


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO).astimezone(UTC)


def snapshot(c: RandomCentre) -> tuple[object, ...]:
    return (
        c.agent_states(),
        c.queue_fields(),
        {k: (t.calls_offered, t.calls_answered) for k, t in c.agent_tickers().items()},
    )


def test_same_seed_same_day_however_it_is_advanced() -> None:
    """Two centres with one seed agree, whether advanced in one step or in 5 s polls."""
    cfg = CentreConfig(agents=30, groups=3, queues=2, seed=11)
    start = oslo(2026, 3, 2, 9, 0)
    a = RandomCentre(cfg, start=start)
    b = RandomCentre(cfg, start=start)
    end = start + timedelta(hours=1)
    a.advance_to(end)
    t = start
    while t < end:
        t += timedelta(seconds=5)
        b.advance_to(t)
    assert snapshot(a) == snapshot(b)
    assert a.schedules() == b.schedules()
    c = RandomCentre(CentreConfig(agents=30, groups=3, queues=2, seed=12), start=start)
    c.advance_to(end)
    assert snapshot(c) != snapshot(a)


def test_schedules_are_well_formed_shifts() -> None:
    """Generated segments are per-agent, non-overlapping, daytime and of known activities."""
    c = RandomCentre(CentreConfig(agents=50, groups=5, seed=3), start=oslo(2026, 3, 2, 6, 0))
    by_agent: dict[str, list[Segment]] = defaultdict(list)
    for seg in c.schedules():
        by_agent[seg.agent_id].append(seg)
    assert len(by_agent) >= 35  # about 10% have the day off
    for segs in by_agent.values():
        for seg in segs:
            assert seg.end > seg.start
            assert seg.activity in {"phone", "break", "lunch", "meeting", "training"}
            assert seg.start.astimezone(OSLO).hour >= 7
            assert seg.end.astimezone(OSLO).hour <= 19
        for prev, nxt in itertools.pairwise(segs):
            assert prev.end == nxt.start  # one contiguous shift
        assert {s.activity for s in segs} >= {"phone", "lunch"}
    assert c.schedules_for(datetime(2026, 3, 2).date()) == c.schedules()


def test_agents_follow_their_schedules() -> None:
    """Mid-shift most scheduled agents are logged on; at 03:00 everyone is logged off."""
    c = RandomCentre(CentreConfig(agents=60, groups=3, seed=5), start=oslo(2026, 3, 2, 6, 0))
    t = oslo(2026, 3, 2, 11, 0)
    c.advance_to(t)
    scheduled = {s.agent_id for s in c.schedules() if s.start <= t < s.end}
    states = c.agent_states()
    on = sum(1 for a in scheduled if states[a][0].logged_on)
    assert on >= 0.75 * len(scheduled)
    unscheduled = set(states) - {s.agent_id for s in c.schedules()}
    assert all(not states[a][0].logged_on for a in unscheduled)
    kinds = {s.kind for s, _ in states.values()}
    assert StateKind.CONNECTED in kinds
    c.advance_to(oslo(2026, 3, 3, 3, 0))
    assert all(s.kind is StateKind.LOGGED_OFF for s, _ in c.agent_states().values())


def test_late_login_rate_controls_punctuality() -> None:
    """late_login_rate 1: nobody is on at shift start + 3 min; 0: everyone is on at the start."""
    for rate, expect_on in ((1.0, False), (0.0, True)):
        cfg = CentreConfig(agents=20, groups=2, seed=9, behaviour=Behaviour(late_login_rate=rate))
        c = RandomCentre(cfg, start=oslo(2026, 3, 2, 5, 0))
        firsts = sorted(
            (min(s.start for s in c.schedules() if s.agent_id == a), a)
            for a in {s.agent_id for s in c.schedules()}
        )
        assert firsts
        for first, agent in firsts:
            at = first + timedelta(minutes=3) if not expect_on else first
            c.advance_to(at)
            assert c.agent_states()[agent][0].logged_on is expect_on, (rate, agent)


def test_break_pauses_use_the_break_pause_type() -> None:
    """During a scheduled break, agents who are paused are paused as Break."""
    c = RandomCentre(CentreConfig(agents=40, groups=2, seed=2), start=oslo(2026, 3, 2, 6, 0))
    breaks = [s for s in c.schedules() if s.activity == "break"]
    hits = 0
    for seg in sorted(breaks, key=lambda s: s.start):
        c.advance_to(seg.start + timedelta(minutes=7))
        state, _ = c.agent_states()[seg.agent_id]
        if state.kind is StateKind.PAUSE:
            hits += 1
            assert state.pause_type in {"Break", "Toilet", "Coaching"}
    assert hits >= len(breaks) // 2


def test_today_tickers_reset_at_local_midnight() -> None:
    """On a VirtualClock, 'today' tickers count up during the day and restart at local midnight."""
    clock = VirtualClock(oslo(2026, 3, 2, 16))
    sim = Simulator.random(agents=20, groups=2, queues=2, seed=4, clock=clock)
    centre = sim.centre
    assert isinstance(centre, RandomCentre)
    clock.set(oslo(2026, 3, 2, 23, 59, 59))
    before = sim.queue_figures()
    assert sum(q["callsOfferedToday"] for q in before.values()) > 0
    assert sum(t.calls_answered for t in centre.agent_tickers().values()) > 0
    assert any(t.logged_on_seconds > 0 for t in centre.agent_tickers().values())
    clock.set(oslo(2026, 3, 3, 0, 0, 1))
    after = sim.queue_figures()
    assert all(q["callsOfferedToday"] == 0 for q in after.values())
    assert all(q["callsAnsweredToday"] == 0 for q in after.values())
    assert all(t.calls_offered == 0 for t in centre.agent_tickers().values())
    assert all(t.logged_on_seconds == 0 for t in centre.agent_tickers().values())
    # and the next day is planned
    assert any(s.start.astimezone(OSLO).date().day == 3 for s in sim.schedules())


def test_queue_fields_are_consistent() -> None:
    """Queue figures add up: ready + paused + unavailable = logged on; answered <= offered."""
    c = RandomCentre(CentreConfig(agents=30, groups=3, queues=3, seed=8), start=oslo(2026, 3, 2, 8))
    c.advance_to(oslo(2026, 3, 2, 12))
    for q in c.queue_fields().values():
        assert q["agentsReady"] + q["agentsInPause"] + q["agentsUnavailable"] == q["agentsLoggedOn"]
        assert q["callsAnsweredToday"] + q["callsAbandonedToday"] <= q["callsOfferedToday"]
        assert 0 <= q["sla"] <= 100
        assert q["callsOfferedToday"] > 0
