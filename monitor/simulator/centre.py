"""Random mode: a seeded, event-driven contact centre that runs on whatever clock drives it.

N agents in G user groups follow generated shifts (phone, breaks, lunch, the odd meeting or
training) in the tenant's time zone, and behave like people: they log in a little early or, at
a configurable rate, late; take contacts (available -> connecting -> connected -> wrap_up ->
available, with the occasional no_answer); make short busy calls; take toilet and coaching
pauses; and sometimes overrun their breaks. Visual queues receive contacts at a rate that
follows the staffing, hold them until an agent is free or the caller gives up, and keep 'today'
tickers that reset at local midnight.

The model is lazy: `advance_to(t)` processes every event up to t, in (time, sequence) order, so
for a given seed and start the outcome does not depend on how often it is advanced. Internally
times are POSIX seconds (floats) for speed; the public accessors return aware UTC datetimes.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.core.states import AgentState, StateKind
from monitor.engine.model import Segment
from monitor.simulator.backend import (
    AccessPointTicker,
    AgentTicker,
    SystemQueue,
    User,
    UserGroup,
    VisualQueue,
    pause_type_ids,
)

GROUP_NAMES = ("Support", "Sales", "Billing", "Technical", "Retention", "Onboarding", "Claims")
QUEUE_LANGUAGES = ("NO", "SE", "DK", "FI", "EN")
FIRST_NAMES = (
    "Ada", "Ingrid", "Kari", "Nora", "Emma", "Sofie", "Maja", "Sara", "Ida", "Thea", "Liv",
    "Astrid", "Hanna", "Jonas", "Lars", "Ole", "Henrik", "Magnus", "Erik", "Anders", "Jakob",
    "Emil", "Sander", "Mathias", "Aksel", "Tobias", "Filip", "Sigrid", "Marius", "Eirik",
)  # fmt: skip
LAST_NAMES = (
    "Nilsen", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Berg",
    "Haugen", "Hagen", "Johnsen", "Jacobsen", "Kristiansen", "Dahl", "Lie", "Moen", "Solberg",
    "Bakken", "Strand", "Eriksen", "Lund", "Holm", "Lunde", "Vik", "Halvorsen",
)  # fmt: skip

FIRST_GROUP_ID = 20617
FIRST_QUEUE_ID = 4101
FIRST_SYSTEM_QUEUE_ID = 38342
FIRST_SERVICE_ID = 912
FIRST_AGENT_ID = 158001

# the pause type an agent takes for each scheduled non-phone activity
PAUSE_FOR_ACTIVITY = {
    "break": "Break",
    "lunch": "Lunch",
    "meeting": "Meeting",
    "training": "Training",
}
_BUSY_STATES = frozenset(
    {
        StateKind.CONNECTING,
        StateKind.CONNECTED,
        StateKind.WRAP_UP,
        StateKind.NO_ANSWER,
        StateKind.BUSY,
    }
)

_AVAILABLE = AgentState(StateKind.AVAILABLE)
_LOGGED_OFF = AgentState(StateKind.LOGGED_OFF)
_CONNECTING = AgentState(StateKind.CONNECTING)
_CONNECTED = AgentState(StateKind.CONNECTED)
_WRAP_UP = AgentState(StateKind.WRAP_UP)
_NO_ANSWER = AgentState(StateKind.NO_ANSWER)
_BUSY = AgentState(StateKind.BUSY)

# event kinds
_INTENT, _TIMER, _ADHOC, _ARRIVAL, _ABANDON, _MIDNIGHT = range(6)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the simulated people behave. Rates are probabilities per shift/break or per hour."""

    late_login_rate: float = 0.08
    late_login_minutes: tuple[float, float] = (4.0, 25.0)
    early_logoff_rate: float = 0.03
    early_logoff_minutes: tuple[float, float] = (5.0, 30.0)
    break_overrun_rate: float = 0.12
    break_overrun_minutes: tuple[float, float] = (2.0, 12.0)
    no_answer_rate: float = 0.03
    busy_per_hour: float = 0.4
    toilet_per_hour: float = 0.25
    coaching_per_hour: float = 0.03
    ring_seconds: tuple[float, float] = (3.0, 12.0)
    talk_mean_seconds: float = 240.0
    wrap_mean_seconds: float = 45.0
    long_wrap_rate: float = 0.03
    occupancy: float = 0.85  # offered load relative to the agents staffed for phone
    patience_mean_seconds: float = 150.0
    sla_seconds: float = 30.0
    callback_rate: float = 0.05  # share of contacts that are callbacks (CIQ)
    day_off_rate: float = 0.1
    meeting_rate: float = 0.15  # share of shifts with a meeting or training hour


@dataclass(frozen=True, slots=True)
class CentreConfig:
    agents: int = 200
    groups: int = 5
    queues: int = 4
    seed: int = 1
    timezone: str = "Europe/Oslo"
    behaviour: Behaviour = field(default_factory=Behaviour)
    # the model starts this long before its start time, so agents are mid-shift when served
    warmup: timedelta = timedelta(minutes=15)


class _Contact:
    __slots__ = ("arrival", "callback", "deadline", "queue", "waiting")

    def __init__(self, queue: int, arrival: float, deadline: float, callback: bool) -> None:
        self.queue = queue
        self.arrival = arrival
        self.deadline = deadline
        self.callback = callback
        self.waiting = True


class _Agent:
    __slots__ = (
        "acc_from",
        "adhoc",
        "answered",
        "contact",
        "first",
        "group",
        "id",
        "idx",
        "intent",
        "last",
        "logged_on_s",
        "offered",
        "pause_s",
        "q_answered",
        "q_offered",
        "queues",
        "session_start",
        "since",
        "state",
        "user_name",
        "version",
    )

    def __init__(self, idx: int, agent_id: int, first: str, last: str, group: int) -> None:
        self.idx = idx
        self.id = agent_id
        self.first = first
        self.last = last
        self.user_name = f"{first}.{last}{agent_id % 1000}".lower()
        self.group = group
        self.queues: tuple[int, ...] = ()
        self.state = _LOGGED_OFF
        self.since = 0.0
        self.version = 0
        self.intent: str | None = None
        self.adhoc = False
        self.contact: _Contact | None = None
        self.session_start: float | None = None
        self.acc_from = 0.0
        self.logged_on_s = 0.0
        self.pause_s: dict[str, float] = {}
        self.offered = 0
        self.answered = 0
        self.q_offered: dict[int, int] = {}
        self.q_answered: dict[int, int] = {}


class _QueueTicker:
    __slots__ = (
        "abandoned",
        "abandoned_sla",
        "answered",
        "answered_sla",
        "ciq_answered",
        "ciq_offered",
        "offered",
    )

    def __init__(self) -> None:
        self.offered = self.answered = self.abandoned = 0
        self.answered_sla = self.abandoned_sla = 0
        self.ciq_offered = self.ciq_answered = 0


def _ts(t: datetime) -> float:
    return t.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class RandomCentre:
    """The random-mode contact centre. Deterministic for a given config and start time."""

    def __init__(self, config: CentreConfig | None = None, *, start: datetime) -> None:
        self.config = cfg = config or CentreConfig()
        if cfg.agents < 0 or cfg.groups < 1 or cfg.queues < 1:
            raise ValueError("need agents >= 0, groups >= 1 and queues >= 1")
        self.timezone = ZoneInfo(cfg.timezone)
        self.behaviour = cfg.behaviour
        self._rng = random.Random(cfg.seed)
        self._heap: list[tuple[float, int, int, tuple[int, ...]]] = []
        self._seq = 0

        self._groups = [
            UserGroup(
                FIRST_GROUP_ID + g,
                GROUP_NAMES[g] if g < len(GROUP_NAMES) else f"Team {g + 1}",
            )
            for g in range(cfg.groups)
        ]
        self._vqueues = self._make_queues(cfg.queues)
        # group g answers its primary queue g % Q, and queues beyond the groups are shared
        self._group_queues = [
            tuple(sorted({g % cfg.queues} | {q for q in range(cfg.queues) if q % cfg.groups == g}))
            for g in range(cfg.groups)
        ]
        self._queue_groups = [
            tuple(g for g in range(cfg.groups) if q in self._group_queues[g])
            for q in range(cfg.queues)
        ]
        names = random.Random(f"names:{cfg.seed}")
        self._agents = [
            _Agent(i, FIRST_AGENT_ID + i, names.choice(FIRST_NAMES), names.choice(LAST_NAMES), g)
            for i in range(cfg.agents)
            for g in [i % cfg.groups]
        ]
        for a in self._agents:
            a.queues = self._group_queues[a.group]
        self._available: list[dict[int, None]] = [{} for _ in range(cfg.groups)]
        self._phone_staff = [0] * cfg.groups
        self._waiting: list[deque[_Contact]] = [deque() for _ in range(cfg.queues)]
        self._qtick = [_QueueTicker() for _ in range(cfg.queues)]
        self._surge: dict[tuple[int, int], float] = {}
        self._days: dict[date, list[Segment]] = {}

        self._now = _ts(start) - cfg.warmup.total_seconds()
        for a in self._agents:
            a.since = a.acc_from = self._now
        self._start_day(self._local_date(self._now), initial=True)
        for q in range(cfg.queues):
            self._push(self._now, _ARRIVAL, (q, 0))
        self.advance_to(start)

    # -- public ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return _dt(self._now)

    def advance_to(self, t: datetime) -> None:
        """Process every event up to `t` (a no-op for times already passed)."""
        target = _ts(t)
        heap = self._heap
        while heap and heap[0][0] <= target:
            at, _, kind, payload = heapq.heappop(heap)
            self._now = max(self._now, at)
            self._dispatch(kind, payload)
        self._now = max(self._now, target)

    def user_groups(self) -> Sequence[UserGroup]:
        return list(self._groups)

    def users(self) -> Sequence[User]:
        return [
            User(
                id=a.id,
                group_id=self._groups[a.group].id,
                group_name=self._groups[a.group].name,
                first_name=a.first,
                last_name=a.last,
                user_name=a.user_name,
            )
            for a in self._agents
        ]

    def pause_types(self) -> Mapping[str, int]:
        return pause_type_ids()

    def visual_queues(self) -> Sequence[VisualQueue]:
        return list(self._vqueues)

    def agent_states(self) -> dict[str, tuple[AgentState, datetime]]:
        return {str(a.id): (a.state, _dt(a.since)) for a in self._agents}

    def agent_call_counts(self) -> dict[str, tuple[int, int]]:
        return {str(a.id): (a.offered, a.answered) for a in self._agents}

    def agent_tickers(self) -> dict[str, AgentTicker]:
        out = {}
        now = self._now
        for a in self._agents:
            running = now - a.acc_from
            logged_on = a.logged_on_s + (running if a.state.logged_on else 0.0)
            pauses = dict(a.pause_s)
            if a.state.kind is StateKind.PAUSE:
                key = a.state.pause_type or ""
                pauses[key] = pauses.get(key, 0.0) + running
            out[str(a.id)] = AgentTicker(
                calls_offered=a.offered,
                calls_answered=a.answered,
                logged_on_seconds=logged_on,
                pause_seconds=pauses,
                session_start=_dt(a.session_start) if a.session_start is not None else None,
                queue_offered={str(self._vqueues[q].id): n for q, n in a.q_offered.items()},
                queue_answered={str(self._vqueues[q].id): n for q, n in a.q_answered.items()},
            )
        return out

    def queue_fields(self) -> dict[str, dict[str, float]]:
        now = self._now
        out: dict[str, dict[str, float]] = {}
        for q, vq in enumerate(self._vqueues):
            waiting = self._waiting[q]
            waits = [now - c.arrival for c in waiting]
            logged_on = ready = paused = 0
            for g in self._queue_groups[q]:
                for a in self._agents[g :: self.config.groups]:
                    kind = a.state.kind
                    if kind is StateKind.LOGGED_OFF:
                        continue
                    logged_on += 1
                    if kind is StateKind.AVAILABLE:
                        ready += 1
                    elif kind is StateKind.PAUSE:
                        paused += 1
            tk = self._qtick[q]
            handled = tk.answered + tk.abandoned - tk.abandoned_sla
            sla = round(100.0 * tk.answered_sla / handled) if handled > 0 else 100
            wait_max = int(max(waits, default=0.0))
            out[str(vq.id)] = {
                "queueSize": len(waiting),
                "queueSizeCiq": sum(1 for c in waiting if c.callback),
                "queueSizePreferred": 0,
                "waitTimeMaxSeconds": wait_max,
                "waitTimeAverageSeconds": int(sum(waits) / len(waits)) if waits else 0,
                "agentsLoggedOn": logged_on,
                "agentsReady": ready,
                "agentsInPause": paused,
                "agentsUnavailable": logged_on - ready - paused,
                "callsOfferedToday": tk.offered,
                "callsAnsweredToday": tk.answered,
                "callsAbandonedToday": tk.abandoned,
                "callsAnsweredWithinSla": tk.answered_sla,
                "callsAbandonedWithinSla": tk.abandoned_sla,
                "ciqsOfferedToday": tk.ciq_offered,
                "ciqsAnsweredToday": tk.ciq_answered,
                "ciqScheduled": 0,
                "sla": sla,
                "alarmFlag": 1 if wait_max > 120 or (tk.offered >= 10 and sla < 80) else 0,
            }
        return out

    def access_points(self) -> Sequence[AccessPointTicker]:
        return [
            AccessPointTicker(
                access_point=str(22_001_000 + q),
                description=f"{vq.description} hotline",
                requests_offered=self._qtick[q].offered,
                requests_answered=self._qtick[q].answered,
            )
            for q, vq in enumerate(self._vqueues)
        ]

    def schedules(self) -> list[Segment]:
        """The segments of every day the model has planned so far (today, and earlier days)."""
        return sorted(s for day in sorted(self._days) for s in self._days[day])

    def schedules_for(self, day: date) -> list[Segment]:
        """The schedule of a local date: a pure function of the seed, the agent and the date."""
        return sorted(s for a in self._agents for s in self._agent_day(a, day))

    # -- schedules ------------------------------------------------------------------------

    def _make_queues(self, n: int) -> list[VisualQueue]:
        out = []
        seen: set[str] = set()
        for q in range(n):
            topic = GROUP_NAMES[q % len(GROUP_NAMES)]
            lang = QUEUE_LANGUAGES[(q // len(GROUP_NAMES)) % len(QUEUE_LANGUAGES)]
            desc = f"{topic} {lang}"
            if desc in seen:
                desc = f"{desc} {q + 1}"
            seen.add(desc)
            key = "q_" + desc.lower().replace(" ", "_")
            system = SystemQueue(FIRST_SYSTEM_QUEUE_ID + q, key, desc, FIRST_SERVICE_ID + q)
            out.append(VisualQueue(FIRST_QUEUE_ID + q, desc, (system,)))
        return out

    def _local(self, day: date, hh: int, mm: int) -> datetime:
        naive = datetime.combine(day, time()) + timedelta(hours=hh, minutes=mm)
        return naive.replace(tzinfo=self.timezone).astimezone(UTC)

    def _agent_day(self, a: _Agent, day: date) -> list[Segment]:
        rng = random.Random(f"{self.config.seed}:{a.id}:{day.isoformat()}")
        if rng.random() < self.behaviour.day_off_rate:
            return []
        start_min = 7 * 60 + 15 * rng.randrange(13)  # 07:00 .. 10:00
        length_min = 8 * 60 if rng.random() < 0.8 else 6 * 60
        # (minutes from the shift start, activity), each running until the next entry
        plan: list[tuple[int, str]]
        jitter = [5 * rng.randrange(-2, 3) for _ in range(3)]
        if length_min == 8 * 60:
            plan = [
                (0, "phone"),
                (120 + jitter[0], "break"),
                (135 + jitter[0], "phone"),
                (240 + jitter[1], "lunch"),
                (270 + jitter[1], "phone"),
                (360 + jitter[2], "break"),
                (375 + jitter[2], "phone"),
            ]
        else:
            plan = [(0, "phone"), (150 + jitter[0], "lunch"), (180 + jitter[0], "phone")]
        if rng.random() < self.behaviour.meeting_rate:
            # an hour of meeting or training early in the shift, before the first break
            plan += [(30, rng.choice(("meeting", "training"))), (90, "phone")]
            plan.sort()
        plan.append((length_min, ""))
        segments = []
        for (offset, activity), (next_offset, _) in itertools.pairwise(plan):
            if next_offset <= offset:
                continue
            start = self._local(day, 0, start_min + offset)
            end = self._local(day, 0, start_min + next_offset)
            segments.append(Segment(start, end, str(a.id), activity))
        return segments

    def _local_date(self, ts: float) -> date:
        return _dt(ts).astimezone(self.timezone).date()

    def _start_day(self, day: date, *, initial: bool = False) -> None:
        """Plan `day`: schedules, and each agent's reactions to its segment boundaries."""
        self._days[day] = [s for a in self._agents for s in self._agent_day(a, day)]
        for old in sorted(self._days)[:-3]:
            del self._days[old]
        by_agent: dict[str, list[Segment]] = {}
        for s in self._days[day]:
            by_agent.setdefault(s.agent_id, []).append(s)
        for a in self._agents:
            reactions: list[tuple[float, str | None]] = []
            previous: str | None = None
            last = -1.0
            segs = by_agent.get(str(a.id), [])
            for i, seg in enumerate(segs):
                boundary = _ts(seg.start)
                reactions.append((self._react(previous, seg.activity, boundary), seg.activity))
                previous = seg.activity
                following = segs[i + 1] if i + 1 < len(segs) else None
                if following is None or following.start != seg.end:
                    reactions.append((self._react(previous, None, _ts(seg.end)), None))
                    previous = None
            for planned, intent in reactions:
                at = max(planned, last + 1.0)  # keep reactions in the order of the boundaries
                last = at
                if initial and at <= self._now:
                    a.intent = intent
                    continue
                self._push(at, _INTENT, (a.idx, _intent_code(intent)))
            if initial and a.intent is not None:
                self._phone_staff[a.group] += a.intent == "phone"
                self._apply_intent(a, self._now)
        next_midnight = self._local(day + timedelta(days=1), 0, 0)
        self._push(_ts(next_midnight), _MIDNIGHT, (0,))

    def _react(self, before: str | None, after: str | None, boundary: float) -> float:
        """When the agent actually acts on a boundary from activity `before` to `after`."""
        b, rng = self.behaviour, self._rng
        if before is None and after == "phone":  # logging in
            if rng.random() < b.late_login_rate:
                return boundary + 60 * rng.uniform(*b.late_login_minutes)
            return boundary - rng.uniform(0, 300)
        if after is None:  # end of shift
            if rng.random() < b.early_logoff_rate:
                return boundary - 60 * rng.uniform(*b.early_logoff_minutes)
            return boundary + rng.uniform(0, 180)
        if before in ("break", "lunch") and after == "phone":
            late = rng.uniform(0, 60)
            if rng.random() < b.break_overrun_rate:
                late += 60 * rng.uniform(*b.break_overrun_minutes)
            return boundary + late
        if after in ("break", "lunch"):
            return boundary + rng.uniform(-60, 90)
        return boundary + rng.uniform(-120, 60)

    # -- events ---------------------------------------------------------------------------

    def _push(self, at: float, kind: int, payload: tuple[int, ...]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, payload))

    def _dispatch(self, kind: int, payload: tuple[int, ...]) -> None:
        t = self._now
        if kind == _INTENT:
            a = self._agents[payload[0]]
            intent = _INTENTS[payload[1]]
            self._phone_staff[a.group] += (intent == "phone") - (a.intent == "phone")
            a.intent = intent
            if a.state.kind not in _BUSY_STATES:
                self._apply_intent(a, t)
        elif kind == _TIMER:
            a = self._agents[payload[0]]
            if a.version == payload[1]:
                self._on_timer(a, t)
        elif kind == _ADHOC:
            a = self._agents[payload[0]]
            if a.version == payload[1] and a.state.kind is StateKind.AVAILABLE:
                self._start_adhoc(a, t)
        elif kind == _ARRIVAL:
            q, real = payload
            if real:
                self._arrive(q, t)
            self._schedule_arrival(q, t)
        elif kind == _ABANDON:
            self._abandon_due(payload[0], t)
        elif kind == _MIDNIGHT:
            self._midnight(t)

    def _midnight(self, t: float) -> None:
        for a in self._agents:
            self._accumulate(a, t)
            a.logged_on_s = 0.0
            a.pause_s = {}
            a.offered = a.answered = 0
            a.q_offered = {}
            a.q_answered = {}
        self._qtick = [_QueueTicker() for _ in self._vqueues]
        self._start_day(self._local_date(t + 1.0))

    def _accumulate(self, a: _Agent, t: float) -> None:
        seconds = t - a.acc_from
        if seconds > 0:
            if a.state.logged_on:
                a.logged_on_s += seconds
            if a.state.kind is StateKind.PAUSE:
                key = a.state.pause_type or ""
                a.pause_s[key] = a.pause_s.get(key, 0.0) + seconds
        a.acc_from = t

    def _set(self, a: _Agent, state: AgentState, t: float) -> None:
        self._accumulate(a, t)
        if a.state.kind is StateKind.AVAILABLE:
            self._available[a.group].pop(a.idx, None)
        if not a.state.logged_on and state.logged_on:
            a.session_start = t
        a.state = state
        a.since = t
        a.version += 1
        a.adhoc = False
        if state.kind is StateKind.AVAILABLE:
            self._available[a.group][a.idx] = None

    def _apply_intent(self, a: _Agent, t: float) -> None:
        intent = a.intent
        if intent == "phone":
            if a.state.kind is not StateKind.AVAILABLE:
                self._become_available(a, t)
        elif intent is None:
            if a.state.logged_on:
                self._set(a, _LOGGED_OFF, t)
        else:
            pause = AgentState(StateKind.PAUSE, PAUSE_FOR_ACTIVITY.get(intent, "Meeting"))
            if a.state != pause:
                self._set(a, pause, t)

    def _become_available(self, a: _Agent, t: float) -> None:
        self._set(a, _AVAILABLE, t)
        contact = self._oldest_waiting(a.queues)
        if contact is not None:
            self._waiting[contact.queue].remove(contact)
            self._offer(a, contact, t)
            return
        b = self.behaviour
        rate = (b.busy_per_hour + b.toilet_per_hour + b.coaching_per_hour) / 3600.0
        if rate > 0:
            self._push(t + self._rng.expovariate(rate), _ADHOC, (a.idx, a.version))

    def _oldest_waiting(self, queues: tuple[int, ...]) -> _Contact | None:
        best: _Contact | None = None
        for q in queues:
            w = self._waiting[q]
            if w and (best is None or w[0].arrival < best.arrival):
                best = w[0]
        return best

    def _start_adhoc(self, a: _Agent, t: float) -> None:
        b, rng = self.behaviour, self._rng
        pick = rng.uniform(0, b.busy_per_hour + b.toilet_per_hour + b.coaching_per_hour)
        if pick < b.busy_per_hour:
            self._set(a, _BUSY, t)
            duration = rng.uniform(60, 240)
        elif pick < b.busy_per_hour + b.toilet_per_hour:
            self._set(a, AgentState(StateKind.PAUSE, "Toilet"), t)
            duration = rng.uniform(180, 420)
        else:
            self._set(a, AgentState(StateKind.PAUSE, "Coaching"), t)
            duration = rng.uniform(600, 1200)
        a.adhoc = True
        self._push(t + duration, _TIMER, (a.idx, a.version))

    def _offer(self, a: _Agent, c: _Contact, t: float) -> None:
        c.waiting = False
        a.contact = c
        self._set(a, _CONNECTING, t)
        a.offered += 1
        a.q_offered[c.queue] = a.q_offered.get(c.queue, 0) + 1
        self._push(t + self._rng.uniform(*self.behaviour.ring_seconds), _TIMER, (a.idx, a.version))

    def _on_timer(self, a: _Agent, t: float) -> None:
        b, rng = self.behaviour, self._rng
        kind = a.state.kind
        if kind is StateKind.CONNECTING:
            c = a.contact
            assert c is not None  # connecting always carries the contact it rings for
            if rng.random() < b.no_answer_rate:
                a.contact = None
                self._set(a, _NO_ANSWER, t)
                self._push(t + rng.uniform(10, 30), _TIMER, (a.idx, a.version))
                self._requeue(c, t)
                return
            self._set(a, _CONNECTED, t)
            a.answered += 1
            a.q_answered[c.queue] = a.q_answered.get(c.queue, 0) + 1
            tk = self._qtick[c.queue]
            tk.answered += 1
            tk.ciq_answered += c.callback
            tk.answered_sla += (t - c.arrival) <= b.sla_seconds
            talk = rng.lognormvariate(0, 0.6) * b.talk_mean_seconds / 1.197  # mean-preserving
            self._push(t + talk, _TIMER, (a.idx, a.version))
        elif kind is StateKind.CONNECTED:
            a.contact = None
            self._set(a, _WRAP_UP, t)
            if rng.random() < b.long_wrap_rate:
                wrap = rng.uniform(300, 600)
            else:
                wrap = rng.expovariate(1.0 / b.wrap_mean_seconds) + 5.0
            self._push(t + wrap, _TIMER, (a.idx, a.version))
        else:  # wrap-up, no answer, busy, or an ad-hoc pause has run its course
            self._apply_intent(a, t)

    # -- queues ---------------------------------------------------------------------------

    def _schedule_arrival(self, q: int, t: float) -> None:
        b = self.behaviour
        staffed = sum(
            self._phone_staff[g] / len(self._group_queues[g]) for g in self._queue_groups[q]
        )
        handle = b.ring_seconds[1] / 2 + b.talk_mean_seconds + b.wrap_mean_seconds
        rate = b.occupancy * staffed / handle * self._surge_at(q, t)
        gap = self._rng.expovariate(rate) if rate > 0 else float("inf")
        # re-read the staffing at least every minute (the process is memoryless, so this is fair)
        if gap > 60.0:
            self._push(t + 60.0, _ARRIVAL, (q, 0))
        else:
            self._push(t + gap, _ARRIVAL, (q, 1))

    def _surge_at(self, q: int, t: float) -> float:
        """Demand relative to staffing, varying per half hour so queues sometimes build up."""
        slot = int(t // 1800)
        factor = self._surge.get((q, slot))
        if factor is None:
            factor = random.Random(f"surge:{self.config.seed}:{q}:{slot}").uniform(0.7, 1.3)
            if len(self._surge) > 4096:
                self._surge.clear()
            self._surge[(q, slot)] = factor
        return factor

    def _arrive(self, q: int, t: float) -> None:
        b, rng = self.behaviour, self._rng
        callback = rng.random() < b.callback_rate
        patience = rng.expovariate(1.0 / b.patience_mean_seconds) if not callback else 3600.0
        c = _Contact(q, t, t + patience, callback)
        tk = self._qtick[q]
        tk.offered += 1
        tk.ciq_offered += callback
        agent = self._free_agent(q)
        if agent is not None:
            self._offer(agent, c, t)
            return
        self._waiting[q].append(c)
        self._push(c.deadline, _ABANDON, (q,))

    def _requeue(self, c: _Contact, t: float) -> None:
        """A contact an agent did not answer goes back to the head of its queue."""
        c.waiting = True
        agent = self._free_agent(c.queue)
        if agent is not None:
            self._offer(agent, c, t)
            return
        self._waiting[c.queue].appendleft(c)
        self._push(max(t, c.deadline), _ABANDON, (c.queue,))

    def _free_agent(self, q: int) -> _Agent | None:
        """The longest-idle available agent among the groups that answer queue `q`."""
        best: _Agent | None = None
        for g in self._queue_groups[q]:
            avail = self._available[g]
            if avail:
                a = self._agents[next(iter(avail))]
                if best is None or a.since < best.since:
                    best = a
        return best

    def _abandon_due(self, q: int, t: float) -> None:
        waiting = self._waiting[q]
        gone = [c for c in waiting if c.deadline <= t]
        for c in gone:
            waiting.remove(c)
            c.waiting = False
            tk = self._qtick[q]
            tk.abandoned += 1
            tk.abandoned_sla += (t - c.arrival) <= self.behaviour.sla_seconds


_INTENTS: tuple[str | None, ...] = (None, "phone", "break", "lunch", "meeting", "training", "off")


def _intent_code(intent: str | None) -> int:
    return _INTENTS.index(intent)
