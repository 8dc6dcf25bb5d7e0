"""Property tests: random schedules and state timelines, polled every 5 s with poll-derived
`since`, against a brute-force per-second reference of the contract's definitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from monitor.core.states import StateKind
from monitor.engine.model import RuleName, RuleSet, Segment
from monitor.rules.loader import ruleset_from_mapping
from tests.engine.driver import drive, st

CADENCE = 5
START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
WINDOW = 3 * 3600
SLACK_EXTRA = 1  # the contract's + 1 s
ACTIVITIES = ["phone", "phone", "phone", "break", "lunch", "meeting", "off", "admin"]
STATES = ["available", "wrap_up", "pause:Break", "pause:Coaching", "logged_off", "unknown"]
RULES = {
    "out_of_adherence": {"after": "1m"},
    "late_login": {"after": "2m"},
    "early_logoff": {"after": "0s"},
    "break_overrun": {"after": "2m"},
    "long_wrap_up": {"after": "30s"},
    "long_pause": {"after": "5m", "pause_type": "Coaching"},
    "unscheduled_login": {"after": "1m"},
    "unmapped_state": {"after": "0s"},
}


def ruleset() -> RuleSet:
    return ruleset_from_mapping(RULES, {"admin": {"allowed": ["available"], "neutral": True}})


@dataclass
class Case:
    segments: list[tuple[int, int, str]]  # [start, end) seconds from START
    changes: list[tuple[int, str]]  # (second, state)


@hs.composite
def cases(draw: hs.DrawFn) -> Case:
    segs: list[tuple[int, int, str]] = []
    t = draw(hs.integers(0, 60)) * 60
    while t < WINDOW and len(segs) < 8:
        length = draw(hs.sampled_from([5, 10, 15, 30, 45, 60, 90])) * 60
        segs.append((t, min(t + length, WINDOW + 3600), draw(hs.sampled_from(ACTIVITIES))))
        t += length + draw(hs.sampled_from([0, 0, 0, 10, 30])) * 60
    changes: list[tuple[int, str]] = []
    t = 0
    for _ in range(draw(hs.integers(0, 6))):
        t += draw(hs.integers(15, 3600))
        if t >= WINDOW:
            break
        changes.append((t, draw(hs.sampled_from(STATES))))
    return Case(segs, changes)


def at(second: int) -> datetime:
    return START + timedelta(seconds=second)


def reference(
    case: Case, rs: RuleSet
) -> tuple[dict[str, list[tuple[int, int | None]]], float, float]:
    """Per-second brute force: condition intervals per rule, adherent and scheduled seconds."""
    state_at = ["logged_off"] * (WINDOW + 1)
    for when, s in case.changes:
        for x in range(when, WINDOW + 1):
            state_at[x] = s
    seg_at: list[tuple[int, int, str] | None] = [None] * (WINDOW + 1)
    for seg in case.segments:
        for x in range(seg[0], min(seg[1], WINDOW + 1)):
            seg_at[x] = seg
    shifts = []  # merged runs of contiguous non-off segments
    for s, e, a in case.segments:
        if a == "off":
            continue
        if shifts and s <= shifts[-1][1]:
            shifts[-1][1] = max(shifts[-1][1], e)
        else:
            shifts.append([s, e])
    blocks = []
    for s, e, a in case.segments:
        if a not in ("break", "lunch"):
            continue
        if blocks and s <= blocks[-1][1]:
            blocks[-1][1] = max(blocks[-1][1], e)
        else:
            blocks.append([s, e])

    holds: dict[str, list[bool]] = {r: [False] * (WINDOW + 1) for r in RULES}
    adherent = scheduled = 0.0
    pause_start = None
    last_on: int | None = None  # last second the agent was logged on
    prev = "logged_off"
    parsed = {name: st(name) for name in STATES}
    for x in range(WINDOW + 1):
        s = state_at[x]
        state = parsed[s]
        if state.kind is StateKind.PAUSE:
            if pause_start is None or parsed[prev].kind is not StateKind.PAUSE:
                pause_start = x
        else:
            pause_start = None
        seg = seg_at[x]
        act = rs.activities.get(seg[2]) if seg else None
        judged = act is not None and not act.neutral
        if x < WINDOW and judged:
            scheduled += 1
            adherent += act.allows(state)
        if judged and not act.allows(state):
            shift = next((sh for sh in shifts if sh[0] <= x < sh[1]), None)
            holds["out_of_adherence"][x] = True
            if state.kind is StateKind.LOGGED_OFF and shift is not None:
                on_in_shift = last_on is not None and last_on >= shift[0]
                holds["early_logoff" if on_in_shift else "late_login"][x] = True
        if pause_start is not None:
            block = next((b for b in blocks if b[1] > pause_start), None)
            if block is not None and x >= max(pause_start + block[1] - block[0], block[0]):
                holds["break_overrun"][x] = True
            if state.pause_type == "Coaching":
                holds["long_pause"][x] = True
        holds["long_wrap_up"][x] = state.kind is StateKind.WRAP_UP
        holds["unscheduled_login"][x] = state.logged_on and seg is None
        holds["unmapped_state"][x] = state.kind is StateKind.UNKNOWN
        if state.logged_on:
            last_on = x
        prev = s
    intervals: dict[str, list[tuple[int, int | None]]] = {}
    for rule, flags in holds.items():
        runs: list[tuple[int, int | None]] = []
        start = None
        for x, f in enumerate(flags):
            if f and start is None:
                start = x
            elif not f and start is not None:
                runs.append((start, x))
                start = None
        if start is not None:
            runs.append((start, None))
        intervals[rule] = runs
    return intervals, adherent, scheduled


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_alerts_within_one_cadence_and_adherence_within_tolerance(case: Case) -> None:
    """Every alert fires/resolves within [ideal, ideal + cadence + 1 s] of the continuous
    timeline's ideal times; no alert is missed or invented; adherence is within 0.005."""
    rs = ruleset()
    schedules = {"1": [Segment(at(s), at(e), "1", a) for s, e, a in case.segments]}
    timeline = {"1": [(at(t), st(s)) for t, s in case.changes]}
    run = drive(timeline, schedules, rs, START, at(WINDOW), cadence=timedelta(seconds=CADENCE))
    ref, ref_adh, ref_sched = reference(case, rs)
    slack = CADENCE + SLACK_EXTRA
    for rule in RULES:
        after = int(rs.rules[RuleName(rule)].after.total_seconds())
        fired = [t for t in run.transitions if t.rule.value == rule]
        episodes: list[tuple[int, int | None]] = []  # (fire second, resolve second or None)
        for t in fired:
            sec = int((t.at - START).total_seconds())
            if t.status == "firing":
                episodes.append((sec, None))
            else:
                assert episodes, f"{rule}: resolve without firing"
                assert episodes[-1][1] is None, f"{rule}: resolve without firing"
                episodes[-1] = (episodes[-1][0], sec)
        unmatched = list(ref[rule])
        for fire, resolve in episodes:
            match = next(
                (
                    iv
                    for iv in unmatched
                    if iv[0] + after <= fire <= iv[0] + after + slack
                    and (iv[1] is None or iv[1] - iv[0] > after - slack)
                ),
                None,
            )
            assert match is not None, f"{rule}: alert at {fire} s matches no ideal {ref[rule]}"
            unmatched.remove(match)
            if resolve is not None:
                assert match[1] is not None, f"{rule}: resolved at {resolve}, ideal still holds"
                assert match[1] <= resolve <= match[1] + slack, f"{rule}: resolve {resolve}"
            elif match[1] is not None:
                assert match[1] > WINDOW - slack, f"{rule}: never resolved, ideal {match[1]}"
        for s, e in unmatched:
            # an ideal alert missed only if it was too short or too late to be seen
            assert (e if e is not None else WINDOW) - s <= after + slack or (
                s + after + slack > WINDOW
            ), f"{rule}: missed ideal episode {(s, e)}"
    m = run.state.agents["1"]
    assert m.scheduled_seconds == ref_sched
    assert abs(m.adherent_seconds - ref_adh) <= CADENCE * len(case.changes)
    if ref_sched >= 6000:
        assert abs(m.adherent_seconds / m.scheduled_seconds - ref_adh / ref_sched) <= 0.005
