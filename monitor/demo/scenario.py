"""The demo's contact centre: a scripted stretch of a day generated around a given instant.

`build_demo(now, agents)` returns a `Scenario` (played by the simulator's scripted mode) whose
schedules and agent states are laid out relative to `now`: shifts already in progress, phone work
in contact cycles (available, connecting, connected, wrap-up), breaks and lunches, a few agents
about to start, and scripted incidents in the first minutes (see `INCIDENTS`) so that the first
alerts fire well within two minutes under the demo rules, and resolve a little later. Later on,
some breaks run over now and then, so a long-running demo keeps producing alerts.

Pure and deterministic: the same `now`, `agents` and `seed` give the same scenario.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core.durations import parse_duration
from monitor.core.states import LOGGED_OFF, AgentState, StateKind
from monitor.engine.model import RuleName, RuleSet, Segment
from monitor.simulator.scenario import Scenario, ScenarioAgent, ScenarioQueue

DEMO_TENANT = "12345"
DEMO_TIMEZONE = "Europe/Oslo"
TEAMS: tuple[str, ...] = ("Support", "Sales", "Billing")
QUEUE_IDS: dict[str, str] = {"Support": "4101", "Sales": "4102", "Billing": "4103"}
MIN_AGENTS = 6
MAX_AGENTS = 600
HISTORY = timedelta(hours=4, minutes=30)  # the scripted day starts this long before `now`
AHEAD = timedelta(hours=8)  # ...and ends this long after it
QUEUE_STEP = 10  # seconds between scripted queue figures

# The operator's rules, with a short `after` for the rules the incidents exercise so that alerts
# come within a minute or two; every other rule keeps its setting from rules/, except long_pause:
# its default (20m) is shorter than the demo's 30-minute lunches, so every lunch would raise it.
DEMO_AFTERS: dict[str, str] = {
    "long_pause": "35m",
    "out_of_adherence": "30s",
    "late_login": "20s",
    "early_logoff": "30s",
    "break_overrun": "20s",
    "long_wrap_up": "45s",
    "queue_no_agents_ready": "20s",
    "queue_wait_above": "30s",
}

BREAK = AgentState(StateKind.PAUSE, "Break")
LUNCH = AgentState(StateKind.PAUSE, "Lunch")
ADMIN = AgentState(StateKind.PAUSE, "Admin")
AVAILABLE = AgentState(StateKind.AVAILABLE)
CONNECTING = AgentState(StateKind.CONNECTING)
CONNECTED = AgentState(StateKind.CONNECTED)
WRAP_UP = AgentState(StateKind.WRAP_UP)

_FIRST = [
    "Ada",
    "Kari",
    "Ola",
    "Nora",
    "Emil",
    "Sofie",
    "Jonas",
    "Ingrid",
    "Lars",
    "Maja",
    "Henrik",
    "Thea",
    "Magnus",
    "Sara",
    "Jakob",
    "Ida",
    "Anders",
    "Eva",
    "Tobias",
    "Hanna",
    "Sander",
    "Live",
    "Elias",
    "Frida",
    "Mathias",
    "Julie",
    "Kristian",
    "Vilde",
    "Martin",
    "Emma",
    "Sindre",
    "Selma",
    "Eirik",
    "Tiril",
    "Vegard",
    "Astrid",
]
_LAST = [
    "Nilsen",
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Berg",
    "Haugen",
    "Hagen",
    "Lie",
    "Dahl",
    "Bakken",
    "Moen",
    "Strand",
    "Solberg",
    "Eide",
    "Lund",
]


@dataclass(frozen=True, slots=True)
class Incident:
    """A scripted incident: which alert it should raise, and when (offsets from `now`)."""

    rule: str
    subject: str  # "agent" | "queue"
    subject_id: str
    fires_after: timedelta  # ideal firing time, from the demo's start
    resolves_after: timedelta | None
    what: str


@dataclass(frozen=True)
class DemoCentre:
    scenario: Scenario
    incidents: tuple[Incident, ...]
    names: dict[str, str]  # agent id -> name
    queue_names: dict[str, str]  # visual queue id -> description


def rules_note() -> str:
    """One line saying how the demo's rules differ from the operator's."""
    afters = ", ".join(f"{rule} {after}" for rule, after in DEMO_AFTERS.items())
    return (
        f"demo rules: 'after' set to {afters} (long_pause outlasts a lunch); the rest as in rules/"
    )


def demo_ruleset(base: RuleSet) -> RuleSet:
    """`base` (the operator's rules) with the demo's short `after`s; everything else, the
    `enabled` flags included, as `base` has it."""
    rules = dict(base.rules)
    for name, after in DEMO_AFTERS.items():
        rule = RuleName(name)
        cfg = rules[rule]
        short = parse_duration(after)
        escalate = cfg.escalate_after
        if escalate is not None and escalate <= short:
            escalate = None
        rules[rule] = replace(cfg, after=short, escalate_after=escalate)
    return replace(base, rules=rules)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


class _Timeline:
    """One agent's states as (offset seconds from now, state), kept strictly increasing."""

    def __init__(self) -> None:
        self.items: list[tuple[int, AgentState]] = []

    def add(self, at: int, state: AgentState) -> None:
        while self.items and self.items[-1][0] >= at:
            self.items.pop()  # a later decision about the same instant wins
        if self.items and self.items[-1][1] == state:
            return
        self.items.append((at, state))

    def phone(
        self,
        rng: random.Random,
        start: int,
        end: int,
        *,
        busy: tuple[int, int] | None = None,
    ) -> None:
        """Contact cycles over [start, end). Within `busy` the agent is on one long call (so
        nobody in the team is ready)."""
        t = start
        self.add(t, AVAILABLE)
        t += rng.randint(3, 40)
        while t < end:
            if busy is not None and busy[0] - 60 <= t < busy[1]:
                self.add(min(t, busy[0]), CONNECTED)
                t = busy[1]
                if t >= end:
                    return
                self.add(t, WRAP_UP)
                t += rng.randint(4, 15)
                if t < end:
                    self.add(t, AVAILABLE)
                    t += rng.randint(5, 30)
                continue
            for state, low, high in (
                (CONNECTING, 3, 8),
                (CONNECTED, 30, 150),
                (WRAP_UP, 4, 20),
                (AVAILABLE, 5, 60),
            ):
                if t >= end:
                    return
                self.add(t, state)
                t += rng.randint(low, high)


@dataclass
class _Plan:
    """An agent's day before it becomes states: segments (offsets in seconds) and exceptions."""

    shift_start: int
    segments: list[tuple[int, int, str]]
    pause_overrides: dict[int, tuple[int, int]]  # segment index -> (pause start, pause end)


def _shift(start: int) -> list[tuple[int, int, str]]:
    """An 8-hour shift: phone, break, phone, lunch, phone, break, phone."""
    h, m = 3600, 60
    marks = [
        (0, 2 * h, "phone"),
        (2 * h, 2 * h + 15 * m, "break"),
        (2 * h + 15 * m, 4 * h, "phone"),
        (4 * h, 4 * h + 30 * m, "lunch"),
        (4 * h + 30 * m, 6 * h + 15 * m, "phone"),
        (6 * h + 15 * m, 6 * h + 30 * m, "break"),
        (6 * h + 30 * m, 8 * h, "phone"),
    ]
    return [(start + a, start + b, act) for a, b, act in marks]


def _names(n: int) -> list[str]:
    out: list[str] = []
    for i in range(n):
        first = _FIRST[i % len(_FIRST)]
        last = _LAST[(i * 7 + i // len(_FIRST)) % len(_LAST)]
        out.append(f"{first} {last}")
    return out


def build_demo(now: datetime, agents: int = 36, *, seed: int = 7) -> DemoCentre:
    """The demo's scripted centre around `now` (aware). Raises ValueError for a bad `agents`."""
    if now.tzinfo is None:
        raise ValueError("build_demo needs a timezone-aware now")
    if not MIN_AGENTS <= agents <= MAX_AGENTS:
        raise ValueError(f"--agents must be between {MIN_AGENTS} and {MAX_AGENTS}, got {agents}")
    now = now.astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)
    tz = ZoneInfo(DEMO_TIMEZONE)
    names = _names(agents)
    ids = [str(1001 + i) for i in range(agents)]
    teams = [TEAMS[i % len(TEAMS)] for i in range(agents)]
    end_offset = int(AHEAD.total_seconds())
    billing_busy = (5, 125)  # nobody in Billing ready: calls wait (queue_no_agents_ready)
    incidents = _incidents(ids, names)
    plans = _plans(ids, rng)
    timelines = _timelines(ids, teams, plans, rng, billing_busy)
    agents_out: list[ScenarioAgent] = []
    start_offset = -int(HISTORY.total_seconds())
    for i, agent_id in enumerate(ids):
        segs = tuple(
            Segment(now + _s(s), now + _s(e), agent_id, act)
            for s, e, act in plans[agent_id].segments
        )
        states = tuple(
            (now + _s(at), st)
            for at, st in timelines[agent_id].items
            if start_offset <= at <= end_offset
        )
        agents_out.append(ScenarioAgent(agent_id, names[i], teams[i], segs, states))

    queues = tuple(
        _queue(
            rng,
            now,
            team,
            lines=[timelines[a] for a, t in zip(ids, teams, strict=True) if t == team],
            busy=billing_busy if team == "Billing" else None,
            tz=tz,
        )
        for team in TEAMS
    )
    scenario = Scenario(
        name="puzzel-monitor demo",
        source="<demo>",
        customer_key=DEMO_TENANT,
        timezone=tz,
        start=now - HISTORY,
        end=now + AHEAD,
        agents=tuple(agents_out),
        queues=queues,
    )
    return DemoCentre(
        scenario=scenario,
        incidents=incidents,
        names=dict(zip(ids, names, strict=True)),
        queue_names={q.id: q.description for q in queues},
    )


def _incidents(ids: Sequence[str], names: Sequence[str]) -> tuple[Incident, ...]:
    """Who plays which incident (agents 0..4 sit in Support, Sales, Billing, Support, Sales)."""
    a_break, b_late, c_wrap, d_pause, e_logoff = ids[:5]
    return (
        Incident(
            "out_of_adherence",
            "agent",
            d_pause,
            _s(35),
            _s(200),
            f"{names[3]} goes into an Admin pause during phone time",
        ),
        Incident(
            "queue_no_agents_ready",
            "queue",
            QUEUE_IDS["Billing"],
            _s(25),
            _s(125),
            "calls wait in Billing with nobody ready",
        ),
        Incident(
            "late_login",
            "agent",
            b_late,
            _s(40),
            _s(110),
            f"{names[1]}'s shift starts in 20 s; they log in 90 s late",
        ),
        Incident(
            "break_overrun",
            "agent",
            a_break,
            _s(50),
            _s(100),
            f"{names[0]}'s 15-minute break ends in 30 s; they come back 70 s late",
        ),
        Incident(
            "long_wrap_up",
            "agent",
            c_wrap,
            _s(55),
            _s(90),
            f"{names[2]} stays in wrap-up for 80 s",
        ),
        Incident(
            "out_of_adherence",
            "agent",
            a_break,
            _s(60),
            _s(100),
            f"{names[0]} is still on break while phone is scheduled",
        ),
        Incident(
            "early_logoff",
            "agent",
            e_logoff,
            _s(90),
            _s(170),
            f"{names[4]} logs off mid-shift for almost two minutes",
        ),
        Incident(
            "out_of_adherence",
            "agent",
            e_logoff,
            _s(90),
            _s(170),
            f"{names[4]} is logged off while phone is scheduled",
        ),
        Incident(
            "queue_wait_above",
            "queue",
            QUEUE_IDS["Billing"],
            _s(105),
            _s(125),
            "the longest wait in Billing passes two minutes",
        ),
    )


def _plans(ids: Sequence[str], rng: random.Random) -> dict[str, _Plan]:
    """Each agent's shift, and which breaks overrun."""
    agents = len(ids)
    a_break, b_late, c_wrap, d_pause, e_logoff = ids[:5]
    plans: dict[str, _Plan] = {}
    for i, agent_id in enumerate(ids):
        if agent_id == a_break:
            start = -(2 * 3600 + 14 * 60 + 30)  # first break: [now - 14m30s, now + 30s]
        elif agent_id == b_late:
            start = 20
        elif agent_id == c_wrap:
            start = -3600
        elif agent_id == d_pause:
            start = -(3600 + 10 * 60)
        elif agent_id == e_logoff:
            start = -(2 * 3600 + 40 * 60)
        elif i % 10 == 9:
            start = 180 + 120 * (i // 10)  # a few shifts start in the next minutes
        else:
            # in progress for 20 min to 4 h 30 min, evenly spread (and across teams, which take
            # turns): about one in six agents is on a break or at lunch at any moment
            start = -(20 * 60 + (i * 15000) // agents)
        plans[agent_id] = _Plan(start, _shift(start), {})

    # The break that overruns (A), and later ones now and then: a long-running demo keeps going.
    plans[a_break].pause_overrides[1] = (-(14 * 60 + 30), 100)
    for agent_id, plan in plans.items():
        if agent_id in (a_break, b_late, c_wrap, d_pause, e_logoff):
            continue
        for k, (s, e, act) in enumerate(plan.segments):
            if act in ("break", "lunch") and s > 240 and rng.random() < 0.15:
                plan.pause_overrides[k] = (s + rng.randint(0, 10), e + rng.randint(60, 180))
    return plans


def _timelines(
    ids: Sequence[str],
    teams: Sequence[str],
    plans: dict[str, _Plan],
    rng: random.Random,
    billing_busy: tuple[int, int],
) -> dict[str, _Timeline]:
    """Each agent's states: following the plan, then the scripted incidents."""
    _, b_late, c_wrap, d_pause, e_logoff = ids[:5]
    timelines: dict[str, _Timeline] = {}
    for i, agent_id in enumerate(ids):
        plan = plans[agent_id]
        line = _Timeline()
        first_start = plan.segments[0][0]
        login = first_start - rng.randint(5, 25)
        if agent_id == b_late:
            login = 110
        cursor = login
        busy = billing_busy if teams[i] == "Billing" else None
        for k, (s, e, act) in enumerate(plan.segments):
            if act == "phone":
                # a pause (overrunning break) may still be going on when phone starts
                cursor = max(cursor, s)
                line.phone(rng, cursor, e, busy=busy)
                continue
            p_start, p_end = plan.pause_overrides.get(
                k, (s + rng.randint(0, 12), e + rng.randint(-20, 8))
            )
            line.add(p_start, BREAK if act == "break" else LUNCH)
            cursor = p_end
        logoff = plan.segments[-1][1] + rng.randint(0, 20)
        line.add(max(logoff, cursor), LOGGED_OFF)
        timelines[agent_id] = line

    # incidents that are not about the schedule's shape
    # C is in Billing: after the wrap-up, another call (nobody there is ready until +125 s)
    _override(
        timelines[c_wrap],
        [(-60, CONNECTED), (10, WRAP_UP), (90, CONNECTING), (97, CONNECTED)],
        -60,
        billing_busy[1],
    )
    _override(timelines[d_pause], [(5, ADMIN), (200, AVAILABLE)], 5, 205)
    _override(timelines[e_logoff], [(60, LOGGED_OFF), (170, AVAILABLE)], 60, 175)
    return timelines


def _override(
    line: _Timeline, states: Iterable[tuple[int, AgentState]], start: int, resume: int
) -> None:
    """Replace the agent's states in [start, resume) by `states`; the regular cycle resumes at
    `resume` (in whatever state was scheduled there, or available)."""
    items = line.items
    after = [(t, s) for t, s in items if t >= resume]
    before = [(t, s) for t, s in items if t < start]
    line.items = before
    for t, s in states:
        line.add(t, s)
    for t, s in after:
        line.add(t, s)


def _state_at(times: list[int], states: list[AgentState], t: int) -> AgentState:
    i = bisect.bisect_right(times, t) - 1
    return states[i] if i >= 0 else LOGGED_OFF


def _queue(
    rng: random.Random,
    now: datetime,
    team: str,
    *,
    lines: list[_Timeline],
    busy: tuple[int, int] | None,
    tz: ZoneInfo,
) -> ScenarioQueue:
    """Visual-queue figures every QUEUE_STEP seconds, consistent with the team's states; calls
    only wait with nobody ready during the scripted incident."""
    indexed = [([t for t, _ in ln.items], [s for _, s in ln.items]) for ln in lines]
    # 'today' counters: contacts offered/answered since local midnight, from the states
    offered_times = sorted(t for ln in lines for t, s in ln.items if s == CONNECTING)
    answered_events = sorted(t for ln in lines for t, s in ln.items if s == CONNECTED)
    start = -int(HISTORY.total_seconds())
    end = int(AHEAD.total_seconds())
    first = start + ((5 - start) % QUEUE_STEP)  # the grid passes through +5 s (incident start)
    states: list[tuple[datetime, dict[str, float]]] = []
    day_base: dict[Any, tuple[int, int]] = {}
    extra_abandoned = 0
    for t in range(first, end + 1, QUEUE_STEP):
        at = now + _s(t)
        local_day = at.astimezone(tz).date()
        if local_day not in day_base:
            midnight = datetime.combine(local_day, datetime.min.time(), tzinfo=tz)
            m = int((midnight.astimezone(UTC) - now).total_seconds())
            day_base[local_day] = (
                bisect.bisect_left(offered_times, m),
                bisect.bisect_left(answered_events, m),
            )
            extra_abandoned = 0
        off0, ans0 = day_base[local_day]
        offered = bisect.bisect_right(offered_times, t) - off0
        answered = bisect.bisect_right(answered_events, t) - ans0
        kinds = [_state_at(ts, ss, t).kind for ts, ss in indexed]
        logged_on = sum(k is not StateKind.LOGGED_OFF for k in kinds)
        ready = sum(k is StateKind.AVAILABLE for k in kinds)
        paused = sum(k is StateKind.PAUSE for k in kinds)
        incident = busy is not None and busy[0] <= t < busy[1]
        if incident:
            assert busy is not None
            waiting = 2 + (t - busy[0]) // 20
            wait_max = 60 + (t - busy[0])
            wait_avg = wait_max // 2
            extra_abandoned += 1 if (t - busy[0]) % 30 == 0 else 0
        elif ready == 0:
            waiting, wait_max, wait_avg = 0, 0, 0
        else:
            waiting = rng.choice((0, 0, 0, 1, 1, 2))
            wait_max = rng.randint(5, 60) if waiting else 0
            wait_avg = wait_max // 2
        abandoned = offered // 25 + extra_abandoned
        within = math.ceil(answered * 0.9)
        handled = answered + abandoned
        sla = round(100.0 * within / handled, 1) if handled else 100.0
        states.append(
            (
                at,
                {
                    "queueSize": float(waiting),
                    "waitTimeMaxSeconds": float(wait_max),
                    "waitTimeAverageSeconds": float(wait_avg),
                    "agentsLoggedOn": float(logged_on),
                    "agentsReady": float(0 if incident else ready),
                    "agentsInPause": float(paused),
                    "agentsUnavailable": float(logged_on - ready - paused),
                    "callsOfferedToday": float(offered + abandoned),
                    "callsAnsweredToday": float(answered),
                    "callsAbandonedToday": float(abandoned),
                    "callsAnsweredWithinSla": float(within),
                    "sla": sla,
                },
            )
        )
    return ScenarioQueue(QUEUE_IDS[team], f"{team} NO", tuple(states))


def incident_lines(centre: DemoCentre) -> list[str]:
    """What the incidents are, one line each, for the banner."""
    return [f"+{int(i.fires_after.total_seconds())}s {i.rule}: {i.what}" for i in centre.incidents]
