"""Write tests/scenarios/day_50_agents.yaml: 50 agents over a full day, with its expect block.

Usage (from the project root):

    .venv/bin/python tests/scenarios/make_day50.py            # (re)write day_50_agents.yaml
    .venv/bin/python tests/scenarios/make_day50.py --verify tests/scenarios/x.yaml ...
    .venv/bin/python tests/scenarios/make_day50.py --agents 500 OUT.yaml  # a larger day

`--agents N` writes the same kind of day with N agents (the incidents repeat every 50 agents;
the first 50 are those of the committed file) to OUT.yaml only: the `replay` benchmark
generates its 500-agent day this way, into .bench-out/.

The day is generated deterministically (a fixed seed): realistic 6-8 h shifts with breaks, lunch
and some meetings; contact-handling cycles (available / connecting / connected / wrap_up) every
few minutes; and a handful of planned incidents. The `expect` block is computed by `reference()`
below, an independent continuous-time reading of ../shared/scenario-format.md in pure Python: it
does not import the monitor's engine, so the replay test compares two separate implementations.

`--verify` runs the same reference over hand-written scenario files (parsed with
monitor.simulator.scenario, the file-format parser only) and prints the alerts and figures it
derives, as a second opinion on hand arithmetic.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
# Two densities of the same day: `day_50_agents.yaml` at the granularity a WFM feed shows (long
# stretches on the phone with occasional wrap-ups), and `day_50_agents_dense.yaml` with every
# contact's connecting/connected/wrap_up cycle (about 11,000 state changes): a stress test.
OUTPUTS = {"wfm": HERE / "day_50_agents.yaml", "dense": HERE / "day_50_agents_dense.yaml"}
CYCLES: dict[str, list[tuple[tuple[str, None], int, int]]] = {
    "dense": [
        (("available", None), 40, 300),
        (("connecting", None), 4, 20),
        (("connected", None), 60, 420),
        (("wrap_up", None), 10, 110),
    ],
    "wfm": [
        (("available", None), 900, 3000),
        (("wrap_up", None), 30, 150),
    ],
}

PHONE_STATES = frozenset({"available", "connecting", "connected", "busy", "wrap_up", "no_answer"})
DEFAULT_ACTIVITIES: dict[str, frozenset[str]] = {
    "phone": PHONE_STATES,
    "break": frozenset({"pause"}),
    "lunch": frozenset({"pause"}),
    "meeting": frozenset({"pause", "logged_off"}),
    "training": frozenset({"pause", "logged_off"}),
    "off": frozenset({"logged_off"}),
}
BREAK_ACTIVITIES = frozenset({"break", "lunch"})

# --- the reference: the contract's definitions, in continuous time --------------------------
# Times are POSIX seconds (ints). A state is (kind, pause_type or None).

State = tuple[str, str | None]
LOGGED_OFF: State = ("logged_off", None)


@dataclass
class RefAgent:
    id: str
    segments: list[tuple[int, int, str]]  # (start, end, activity), sorted, non-overlapping
    states: list[tuple[int, State]]  # sorted by time


@dataclass
class RefQueue:
    id: str
    states: list[tuple[int, dict[str, float]]]


@dataclass
class RefAlert:
    rule: str
    subject: str  # "agent" | "queue"
    subject_id: str
    at: int
    resolved: int | None


@dataclass
class RefScenario:
    start: int
    end: int
    rules: dict[str, dict[str, object]]
    activities: dict[str, frozenset[str]]
    agents: list[RefAgent]
    queues: list[RefQueue] = field(default_factory=list)


def allows(allowed: frozenset[str], state: State) -> bool:
    kind, pause_type = state
    return kind in allowed or (kind == "pause" and f"pause:{pause_type}" in allowed)


def runs(points: list[int], holds: Callable[[int], bool]) -> list[tuple[int, int]]:
    """Maximal [a, b) stretches where `holds` is true; `holds` is constant between `points`."""
    out: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(points):
        if not holds(a):
            continue
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def alerts_from(
    rule: str,
    who: tuple[str, str],
    stretches: Iterable[tuple[int, int]],
    *,
    after: int,
    end: int,
) -> list[RefAlert]:
    """An alert fires when a condition has held for `after`, and resolves when it stops.

    A stretch still holding at the window's `end` has no resolve time.
    """
    subject, sid = who
    out = []
    for a, b in stretches:
        fire = a + after
        if after == 0 or fire < b:
            out.append(RefAlert(rule, subject, sid, fire, None if b >= end else b))
    return out


def _seconds(value: object) -> int:
    text = str(value)
    total, num = 0, ""
    for ch in text:
        if ch.isdigit():
            num += ch
        else:
            total += int(num) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
    return total


class Timeline:
    """One agent's day as the contract sees it; every query is constant between `points`."""

    def __init__(self, sc: RefScenario, ag: RefAgent) -> None:
        self.ag = ag
        self.acts = sc.activities
        self.times = [t for t, _ in ag.states]
        self.shifts: list[list[int]] = []
        for s, e, act in ag.segments:
            if act == "off":
                continue
            if self.shifts and self.shifts[-1][1] == s:
                self.shifts[-1][1] = e
            else:
                self.shifts.append([s, e])
        bounds = {sc.start, sc.end, *self.times, *(x for s in ag.segments for x in s[:2])}
        points = sorted(p for p in bounds if sc.start <= p <= sc.end)
        # a pause stays one pause when only its type changes, so only the kind matters here
        self.overrun_starts: dict[tuple[int, int], int] = {}
        for ps, pe in runs(points, lambda t: self.state_at(t)[0] == "pause"):
            seg = next(
                (s for s in ag.segments if s[2] in BREAK_ACTIVITIES and s[0] < pe and ps < s[1]),
                None,
            )
            if seg is not None:
                self.overrun_starts[(ps, pe)] = ps + (seg[1] - seg[0])
        extra = {x for x in self.overrun_starts.values() if sc.start <= x <= sc.end}
        self.points = sorted({*points, *extra})

    def state_at(self, t: int) -> State:
        i = bisect.bisect_right(self.times, t) - 1
        return self.ag.states[i][1] if i >= 0 else LOGGED_OFF

    def seg_at(self, t: int) -> tuple[int, int, str] | None:
        return next((s for s in self.ag.segments if s[0] <= t < s[1]), None)

    def shift_at(self, t: int) -> tuple[int, int] | None:
        return next(((s, e) for s, e in self.shifts if s <= t < e), None)

    def logged_on_between(self, a: int, b: int) -> bool:
        """Logged on at some moment in [a, b)."""
        if self.state_at(a)[0] != "logged_off":
            return True
        return any(a < t < b and st[0] != "logged_off" for t, st in self.ag.states)

    def holds(self, rule: str, params: dict[str, object], t: int) -> bool:
        """Whether `rule`'s condition holds at `t` (scenario-format.md's rules table)."""
        st = self.state_at(t)
        seg = self.seg_at(t)
        allowed = self.acts[seg[2]] if seg else None
        if rule == "out_of_adherence":
            return allowed is not None and not allows(allowed, st)
        if rule in {"late_login", "early_logoff"}:
            sh = self.shift_at(t)
            if sh is None or st != LOGGED_OFF or allowed is None or allows(allowed, LOGGED_OFF):
                return False
            was_on = self.logged_on_between(sh[0], t) if t > sh[0] else False
            return was_on if rule == "early_logoff" else not was_on
        if rule == "break_overrun":
            return any(ps <= t < pe and t >= over for (ps, pe), over in self.overrun_starts.items())
        if rule == "long_wrap_up":
            return st[0] == "wrap_up"
        if rule == "long_pause":
            want = params.get("pause_type")
            return st[0] == "pause" and (want is None or st[1] == want)
        if rule == "unscheduled_login":
            return st != LOGGED_OFF and seg is None
        raise ValueError(rule)

    def figures(self) -> tuple[float, float | None] | None:
        """(adherence, conformance) over the window, or None without scheduled time."""
        sched = adher = prod = phone_sched = 0
        for a, b in itertools.pairwise(self.points):
            st, seg = self.state_at(a), self.seg_at(a)
            if allows(self.acts["phone"], st):
                prod += b - a
            if seg is None:
                continue
            sched += b - a
            if allows(self.acts[seg[2]], st):
                adher += b - a
            if seg[2] == "phone":
                phone_sched += b - a
        if sched == 0:
            return None
        return adher / sched, (prod / phone_sched if phone_sched else None)


def _queue_holds(rule: str, threshold: float, fields: dict[str, float]) -> bool:
    if rule == "queue_sla_below":
        return fields.get("sla", 100.0) < threshold
    if rule == "queue_wait_above":
        return fields.get("waitTimeMaxSeconds", 0.0) > threshold
    return fields.get("queueSize", 0.0) > 0 and fields.get("agentsReady", 0.0) == 0


def _queue_at(rule: str, threshold: float, q: RefQueue, t: int) -> bool:
    return _queue_holds(rule, threshold, _queue_fields(q, t))


def _queue_fields(q: RefQueue, t: int) -> dict[str, float]:
    """Each field keeps its last given value; never given reads 0, except sla (100)."""
    fields: dict[str, float] = {"sla": 100.0}
    for x, given in q.states:
        if x <= t:
            fields.update(given)
    return fields


def reference(sc: RefScenario) -> tuple[list[RefAlert], dict[str, tuple[float, float | None]]]:
    """Every alert the contract says fires, and each scheduled agent's adherence/conformance."""
    alerts: list[RefAlert] = []
    figures: dict[str, tuple[float, float | None]] = {}
    for ag in sc.agents:
        tl = Timeline(sc, ag)
        for rule, params in sc.rules.items():
            if rule.startswith("queue_"):
                continue
            stretches = runs(tl.points, functools.partial(tl.holds, rule, params))
            after = _seconds(params.get("after", "0s"))
            alerts += alerts_from(rule, ("agent", ag.id), stretches, after=after, end=sc.end)
        figs = tl.figures()
        if figs is not None:
            figures[ag.id] = figs
    for q in sc.queues:
        points = sorted(p for p in {sc.start, sc.end, *(t for t, _ in q.states)} if p >= sc.start)
        points = [p for p in points if p <= sc.end]
        for rule, params in sc.rules.items():
            if not rule.startswith("queue_"):
                continue
            threshold = float(str(params.get("threshold", 0)))
            stretches = runs(points, functools.partial(_queue_at, rule, threshold, q))
            after = _seconds(params.get("after", "0s"))
            alerts += alerts_from(rule, ("queue", q.id), stretches, after=after, end=sc.end)
    alerts.sort(key=lambda a: (a.at, a.rule, a.subject_id))
    return alerts, figures


# --- the generated day -----------------------------------------------------------------------

TZ = ZoneInfo("Europe/Oslo")
DAY = date(2026, 3, 4)
START = datetime.combine(DAY, time(5, 45), TZ)
END = datetime.combine(DAY, time(22, 15), TZ)
RULES: dict[str, dict[str, object]] = {
    "out_of_adherence": {"after": "5m"},
    "late_login": {"after": "2m"},
    "early_logoff": {"after": "2m"},
    "break_overrun": {"after": "2m"},
    "long_wrap_up": {"after": "3m"},
    "long_pause": {"after": "10m", "pause_type": "Personal"},
    "unscheduled_login": {"after": "10m"},
    "queue_sla_below": {"after": "5m", "threshold": 80},
    "queue_wait_above": {"after": "1m", "threshold": 120},
    "queue_no_agents_ready": {"after": "1m"},
}
FIRST = ["Ada", "Lars", "Ingrid", "Ola", "Kari", "Nils", "Sofie", "Jonas", "Emma", "Henrik"]
LAST = ["Nilsen", "Berg", "Hansen", "Johansen", "Larsen"]
GROUPS = ["Support", "Sales", "Billing"]


def ts(hh: int, mm: int = 0, ss: int = 0) -> int:
    return int(datetime.combine(DAY, time(hh, mm, ss), TZ).timestamp())


@dataclass
class Plan:
    agent: RefAgent
    name: str
    group: str


def _shift(rng: random.Random, start: int, hours: int) -> list[tuple[int, int, str]]:
    """A shift: phone with a break every ~2 h, lunch mid-shift, sometimes a meeting."""
    end = start + hours * 3600
    blocks: list[tuple[int, int, str]] = []
    b1 = start + 2 * 3600 + rng.choice([0, 900])
    blocks.append((b1, b1 + 900, "break"))
    if hours >= 8:
        lunch = start + 4 * 3600 + rng.choice([0, 900, 1800])
        blocks.append((lunch, lunch + 1800, "lunch"))
        b2 = start + 6 * 3600 + rng.choice([0, 900])
        blocks.append((b2, b2 + 900, "break"))
    if rng.random() < 0.3:
        meet = start + 3600
        blocks.append((meet, meet + 1800, "meeting"))
    blocks.sort()
    segs: list[tuple[int, int, str]] = []
    cursor = start
    for s, e, act in blocks:
        if s > cursor:
            segs.append((cursor, s, "phone"))
        segs.append((s, e, act))
        cursor = e
    segs.append((cursor, end, "phone"))
    return segs


def _handle_contacts(
    rng: random.Random, a: int, b: int, out: list[tuple[int, State]], variant: str
) -> None:
    """Contact-handling cycles from `a` until just before `b` (the caller sets the state at b)."""
    t = a
    cycle = CYCLES[variant]
    i = 0
    while t < b:
        st, lo, hi = cycle[i % len(cycle)]
        out.append((t, st))
        t += rng.randint(lo, hi)
        i += 1


def generate(
    variant: str = "wfm", agents: int = 50
) -> tuple[RefScenario, list[Plan], dict[str, str]]:
    rng = random.Random(50)
    plans: list[Plan] = []
    notes: dict[str, str] = {}
    starts = [6, 6, 7, 7, 8, 8, 8, 9, 9, 10, 11, 12, 13, 14]
    for n in range(agents):
        aid = str(2001 + n)
        hours = 6 if n % 7 == 3 else 8
        start_h = rng.choice([h for h in starts if h + hours <= 22])
        ss = ts(start_h, rng.choice([0, 0, 30]))
        segs = _shift(rng, ss, hours)
        se = segs[-1][1]
        states: list[tuple[int, State]] = []
        login = ss - rng.randint(20, 170)
        logoff = se + rng.randint(0, 150)
        incident = {
            3: "late_login",
            11: "break_overrun",
            17: "early_logoff",
            23: "long_wrap_up",
            29: "long_pause",
            35: "unscheduled_login",
            41: "never_logs_in",
        }.get(n % 50)
        if incident == "late_login":
            login = ss + 7 * 60 + 13
        if incident == "unscheduled_login":
            login = ss - (14 * 60 + 50)
        if incident == "early_logoff":
            logoff = se - (41 * 60 + 27)
        if incident == "never_logs_in":
            plans.append(Plan(RefAgent(aid, segs, []), _name(n), GROUPS[n % 3]))
            notes[aid] = "never logs in: late_login + out_of_adherence for the whole shift"
            continue
        cursor = login
        for s, e, act in segs:
            if e <= cursor:
                continue
            if act == "phone":
                stop = min(e, logoff)
                _handle_contacts(rng, max(cursor, s), stop, states, variant)
                cursor = e
                continue
            # a pause (or a meeting) taken a little late, ended before the segment is over
            late = rng.randint(5, 90)
            ps = s + late
            pe = e + rng.randint(0, late - 5)
            ptype = {"break": "Break", "lunch": "Lunch", "meeting": "Meeting"}[act]
            if incident == "break_overrun" and act == "lunch":
                pe = e + 9 * 60 + 7
            states.append((ps, ("pause", ptype)))
            cursor = pe
            nxt = next((x for x in segs if x[0] == e), None)
            if nxt is None or nxt[2] != "phone":
                states.append((pe, ("available", None)))
            else:
                _handle_contacts(rng, pe, min(nxt[1], logoff), states, variant)
                cursor = nxt[1]
        if incident == "long_wrap_up":
            # a wrap-up of 6m41s half an hour into the shift: the cycle resumes after it
            at = ss + 1800 + 17
            states = [x for x in states if not at <= x[0] < at + 401]
            states.append((at, ("wrap_up", None)))
            states.append((at + 401, ("available", None)))
        late_phone = next((s for s, e, act in segs if act == "phone" and s >= ss + 3 * 3600), None)
        if incident == "long_pause" and late_phone is None:
            incident = None  # (a larger day only) no phone time late enough in this shift
        if incident == "long_pause" and late_phone is not None:
            # a personal pause of 25m32s during phone time, starting 3 h into the shift
            at = late_phone + 600 + 11
            states = [x for x in states if not at <= x[0] < at + 1532]
            states.append((at, ("pause", "Personal")))
            states.append((at + 1532, ("available", None)))
        states.sort()
        states = [x for x in states if x[0] < logoff]
        states.insert(0, (login, ("available", None)))
        states = _dedupe(sorted(states))
        states.append((logoff, LOGGED_OFF))
        if incident:
            notes[aid] = incident
        plans.append(Plan(RefAgent(aid, segs, states), _name(n), GROUPS[n % 3]))

    queues = _queues(rng)
    sc = RefScenario(
        start=int(START.timestamp()),
        end=int(END.timestamp()),
        rules=RULES,
        activities=dict(DEFAULT_ACTIVITIES),
        agents=[p.agent for p in plans],
        queues=queues,
    )
    return sc, plans, notes


def _dedupe(states: list[tuple[int, State]]) -> list[tuple[int, State]]:
    """One state per second (the later wins) and no repeated identical states."""
    by_time: dict[int, State] = {}
    for t, st in states:
        by_time[t] = st
    out: list[tuple[int, State]] = []
    for t in sorted(by_time):
        if out and out[-1][1] == by_time[t]:
            continue
        out.append((t, by_time[t]))
    return out


def _name(n: int) -> str:
    return f"{FIRST[n % 10]} {LAST[(n // 10) % len(LAST)]}"


def _queues(rng: random.Random) -> list[RefQueue]:
    """Three queues sampled every 10 minutes, plus one incident each (and near misses)."""
    out = []
    for qi, qid in enumerate(("4201", "4202", "4203")):
        states: list[tuple[int, dict[str, float]]] = []
        t = ts(6, 0)
        while t < ts(22, 0):
            size = rng.randint(0, 6)
            states.append(
                (
                    t,
                    {
                        "queueSize": size,
                        "agentsReady": rng.randint(1, 6),
                        "waitTimeMaxSeconds": rng.randint(0, 90) if size else 0,
                        "sla": rng.randint(82, 99),
                    },
                )
            )
            t += 600 + rng.randint(0, 59)
        incident: list[tuple[int, dict[str, float]]] = []
        if qi == 0:
            # sla dips under 80 for 12m21s (fires after 5 min); earlier a 3-minute dip does not
            incident = [
                (ts(9, 12, 41), {"sla": 74}),
                (ts(9, 25, 2), {"sla": 84}),
                (ts(15, 3, 3), {"sla": 78}),
                (ts(15, 6, 3), {"sla": 88}),
            ]
        elif qi == 1:
            # the longest wait passes 120 s for 3m37s
            incident = [
                (ts(11, 31, 17), {"queueSize": 9, "waitTimeMaxSeconds": 161}),
                (ts(11, 34, 54), {"queueSize": 3, "waitTimeMaxSeconds": 55}),
            ]
        else:
            # calls wait with nobody ready for 2m32s; a 40-second gap earlier does not alert
            incident = [
                (ts(17, 44, 9), {"queueSize": 4, "agentsReady": 0}),
                (ts(17, 46, 41), {"agentsReady": 2}),
                (ts(8, 3, 19), {"queueSize": 2, "agentsReady": 0}),
                (ts(8, 3, 59), {"agentsReady": 1}),
            ]
        inc_times = {t for t, _ in incident}
        # keep the regular samples out of the incident windows, so they stay as written
        windows = [(ts(9, 12, 41), ts(9, 25, 2)), (ts(15, 3, 3), ts(15, 6, 3))] if qi == 0 else []
        if qi == 1:
            windows = [(ts(11, 31, 17), ts(11, 34, 54))]
        if qi == 2:
            windows = [(ts(17, 44, 9), ts(17, 46, 41)), (ts(8, 3, 19), ts(8, 3, 59))]
        states = [
            (t, f)
            for t, f in states
            if t not in inc_times and not any(a <= t <= b for a, b in windows)
        ]
        states = sorted(states + incident, key=lambda x: x[0])
        out.append(RefQueue(qid, states))
    return out


# --- writing ---------------------------------------------------------------------------------


def hms(t: int) -> str:
    local = datetime.fromtimestamp(t, TZ)
    if local.date() != DAY:
        return local.replace(tzinfo=None).isoformat()
    return local.strftime("%H:%M:%S") if local.second else local.strftime("%H:%M")


def _state_text(st: State) -> str:
    return f"pause, {st[1]}" if st[0] == "pause" else st[0]


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def render(sc: RefScenario, plans: list[Plan], notes: dict[str, str]) -> str:
    alerts, figures = reference(sc)
    n = len(plans)
    lines = [
        "# GENERATED by tests/scenarios/make_day50.py: do not edit by hand; rerun the script.",
        f"# {n} agents over a full day with contact-handling cycles and a handful of incidents:",
    ]
    for aid, note in sorted(notes.items()):
        lines.append(f"#   agent {aid}: {note}")
    lines += [
        "#   queue 4201: sla below 80 for 12m21s (and a 3-minute dip that must not alert)",
        "#   queue 4202: longest wait above 120 s for 3m37s",
        "#   queue 4203: calls waiting with no agent ready for 2m32s (and a 40 s gap: no alert)",
        "# The expect block comes from the script's own reference reading of the contract",
        "# (continuous time, independent of monitor.engine).",
        f"name: A day with {n} agents",
        "tenant:",
        '  customer_key: "12345"',
        "  timezone: Europe/Oslo",
        f"start: {START.replace(tzinfo=None).isoformat()}",
        f"end: {END.replace(tzinfo=None).isoformat()}",
        "rules:",
    ]
    for rule, params in RULES.items():
        inner = ", ".join(f"{k}: {v}" for k, v in params.items())
        lines.append(f"  {rule}: {{{inner}}}")
    lines.append("agents:")
    for p in plans:
        lines += [f"  - id: {p.agent.id}", f"    name: {p.name}", f"    group: {p.group}"]
        lines.append("    schedule:")
        for s, e, act in p.agent.segments:
            lines.append(f"      - [{hms(s)}, {hms(e)}, {act}]")
        if p.agent.states:
            lines.append("    states:")
            for t, st in p.agent.states:
                lines.append(f"      - [{hms(t)}, {_state_text(st)}]")
    lines.append("queues:")
    for q in sc.queues:
        lines += [f"  - id: {q.id}", f"    description: Queue {q.id}", "    states:"]
        for t, f in q.states:
            inner = ", ".join(f"{k}: {_num(v)}" for k, v in f.items())
            lines.append(f"      - [{hms(t)}, {{{inner}}}]")
    lines += ["expect:", "  alerts:"]
    for a in alerts:
        res = f', resolved: "{hms(a.resolved)}"' if a.resolved is not None else ""
        lines.append(
            f'    - {{rule: {a.rule}, {a.subject}: {a.subject_id}, at: "{hms(a.at)}"{res}}}'
        )
    lines.append("  adherence:")
    for aid, (adh, conf) in figures.items():
        conf_text = f", conformance: {conf:.4f}" if conf is not None else ""
        lines.append(f"    {aid}: {{adherence: {adh:.4f}{conf_text}}}")
    return "\n".join(lines) + "\n"


# --- verifying hand-written scenarios ---------------------------------------------------------


def ref_scenario(s: Any) -> RefScenario:
    """The reference's view of a parsed `monitor.simulator.scenario.Scenario` (--verify and
    the tests)."""
    acts = dict(DEFAULT_ACTIVITIES)
    for name, spec in s.activities.items():
        if "allowed" in spec:
            acts[name] = frozenset(str(x) for x in spec["allowed"])
    agents = [
        RefAgent(
            a.id,
            [(int(g.start.timestamp()), int(g.end.timestamp()), g.activity) for g in a.segments],
            [(int(t.timestamp()), (st.kind.value, st.pause_type)) for t, st in a.states],
        )
        for a in s.agents
    ]
    queues = [
        RefQueue(q.id, [(int(t.timestamp()), dict(f)) for t, f in q.states]) for q in s.queues
    ]
    return RefScenario(
        int(s.start.timestamp()), int(s.end.timestamp()), s.rules, acts, agents, queues
    )


def verify(path: str) -> None:
    """Print what the reference derives for a scenario file (a check on hand arithmetic)."""
    from monitor.simulator.scenario import load_scenario  # only --verify parses files

    s = load_scenario(path)
    sc = ref_scenario(s)
    alerts, figures = reference(sc)
    print(f"== {path}")
    for a in alerts:
        res = "" if a.resolved is None else datetime.fromtimestamp(a.resolved, s.timezone)
        print(
            f"  {a.rule} {a.subject} {a.subject_id} at {datetime.fromtimestamp(a.at, s.timezone)}"
            f" resolved {res}"
        )
    for aid, (adh, conf) in figures.items():
        print(f"  {aid}: adherence {adh:.4f} conformance {conf if conf is None else f'{conf:.4f}'}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--verify"]:
        for path in argv[1:]:
            verify(path)
        return 0
    if argv[:1] == ["--agents"] and len(argv) == 3:
        sc, plans, notes = generate("wfm", int(argv[1]))
        Path(argv[2]).write_text(render(sc, plans, notes), encoding="utf-8")
        print(f"wrote {argv[2]} ({len(plans)} agents)")
        return 0
    for variant, out in OUTPUTS.items():
        sc, plans, notes = generate(variant)
        out.write_text(render(sc, plans, notes), encoding="utf-8")
        alerts, _ = reference(sc)
        print(f"wrote {out} ({len(alerts)} alerts expected)")
        for a in alerts:
            print(
                f"  {a.rule} {a.subject} {a.subject_id} {hms(a.at)} -> "
                f"{'-' if a.resolved is None else hms(a.resolved)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
