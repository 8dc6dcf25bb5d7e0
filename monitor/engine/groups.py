"""Team, queue and staleness rules: conditions over a team's window, a queue's figures and an
endpoint's last success."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.core.snapshots import QueueObservation
from monitor.engine.conditions import (
    Emitter,
    OpenCondition,
    Target,
    fire_if_due,
    no_details,
    step,
)
from monitor.engine.conditions import fmt as _fmt
from monitor.engine.conditions import iso as _iso
from monitor.engine.conditions import transition_order as _transition_order
from monitor.engine.conditions import utc as _utc
from monitor.engine.memory import EngineState, QueueMemory, TeamMemory
from monitor.engine.model import (
    Accrual,
    AlertTransition,
    RuleConfig,
    RuleName,
    RuleSet,
)

DEFAULT_TEAM_WINDOW = timedelta(minutes=30)
# team_adherence_below needs this much scheduled time in the window before it judges a team, so
# the first minutes of a shift (or a single agent's short segment) cannot trip it
TEAM_MIN_SCHEDULED_SECONDS = 300.0
_BUCKET_SECONDS = 60
QUEUE_RULES: tuple[RuleName, ...] = (
    RuleName.QUEUE_SLA_BELOW,
    RuleName.QUEUE_WAIT_ABOVE,
    RuleName.QUEUE_NO_AGENTS_READY,
)

# --- teams -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueResult:
    state: EngineState
    transitions: list[AlertTransition]


@dataclass(frozen=True, slots=True)
class StalenessResult:
    state: EngineState
    transitions: list[AlertTransition]


def _evaluate_teams(
    new: EngineState,
    now: datetime,
    accruals: Sequence[Accrual],
    ruleset: RuleSet,
    emit: Emitter,
    *,
    lazy_seconds: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """The team windows: each team's minute bucket gains its agents' accrued (scheduled,
    adherent) seconds, `accruals` one by one and `lazy_seconds` per team (the lazy agents'
    time, `monitor.engine.lazy`)."""
    cfg = ruleset.enabled(RuleName.TEAM_ADHERENCE_BELOW)
    rule = RuleName.TEAM_ADHERENCE_BELOW
    if cfg is None or cfg.threshold is None:
        # disabled: resolve what was firing and forget the windows
        for team, tm in list(new.teams.items()):
            for r, cond in tm.open.items():
                step(emit, r, cfg, cond, Target("team", team, team), holds=False, start=now,
                     ended=now, details=no_details)  # fmt: skip
            del new.teams[team]
        return
    window = cfg.window or DEFAULT_TEAM_WINDOW
    threshold = cfg.threshold
    bucket = int(now.timestamp()) // _BUCKET_SECONDS
    oldest = int((now - window).timestamp()) // _BUCKET_SECONDS
    copies: dict[str, TeamMemory] = {}

    def team_memory(team: str) -> TeamMemory:
        tm = copies.get(team)
        if tm is None:
            old = new.teams.get(team)
            tm = TeamMemory(dict(old.buckets), dict(old.open)) if old else TeamMemory()
            copies[team] = tm
        return tm

    for team, (sched_s, adh_s) in (lazy_seconds or {}).items():
        tm = team_memory(team)
        s, a = tm.buckets.get(bucket, (0.0, 0.0))
        tm.buckets[bucket] = (s + sched_s, a + adh_s)
    for acc in accruals:
        if acc.team and acc.scheduled_seconds:
            tm = team_memory(acc.team)
            s, a = tm.buckets.get(bucket, (0.0, 0.0))
            tm.buckets[bucket] = (s + acc.scheduled_seconds, a + acc.adherent_seconds)
    for team in sorted(set(new.teams) | set(copies)):
        tm = team_memory(team)
        tm.buckets = {k: v for k, v in tm.buckets.items() if k > oldest}
        sched = sum(s for s, _ in tm.buckets.values())
        adh = sum(a for _, a in tm.buckets.values())
        ratio = adh / sched if sched else 1.0
        holds = sched >= TEAM_MIN_SCHEDULED_SECONDS and ratio < threshold

        def details(c: OpenCondition, team: str = team, ratio: float = ratio) -> dict[str, str]:
            return {
                "name": team,
                "value": f"{ratio:.4f}",
                "threshold": f"{threshold:g}",
                "held_for": _fmt(now - c.since),
                "window": _fmt(window),
            }

        opened = step(emit, rule, cfg, tm.open.pop(rule, None), Target("team", team, team),
                      holds=holds, start=now, ended=now, details=details)  # fmt: skip
        if opened is not None:
            tm.open[rule] = opened
        if tm.buckets or tm.open:
            new.teams[team] = tm
        else:
            new.teams.pop(team, None)


# --- queues ----------------------------------------------------------------------------------


def _queue_value(rule: RuleName, q: QueueObservation, cfg: RuleConfig) -> tuple[bool, str]:
    # a value Puzzel did not report (None) never makes a rule hold
    if rule is RuleName.QUEUE_SLA_BELOW:
        sla = q.sla_percent
        return cfg.threshold is not None and sla is not None and sla < cfg.threshold, _g(sla)
    if rule is RuleName.QUEUE_WAIT_ABOVE:
        wait = q.wait_time_max_seconds
        return cfg.threshold is not None and wait is not None and wait > cfg.threshold, _g(wait)
    size, ready = q.queue_size, q.agents_ready
    holds = size is not None and ready is not None and size > 0 and ready == 0
    return holds, f"queueSize={_g(size)} agentsReady={_g(ready)}"


def _g(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"


def evaluate_queues(
    state: EngineState,
    *,
    tenant: str,
    now: datetime,
    queues: Sequence[QueueObservation],
    ruleset: RuleSet,
) -> QueueResult:
    """Evaluate queue rules at `now`. A queue's condition begins at the first poll showing it.

    Queues absent from `queues` keep their conditions (a missing poll is stale_data's business).
    """
    now = _utc(now)
    new = state.shallow_copy()
    new.tenant = tenant
    emit = Emitter(tenant, now)
    for q in queues:
        old = new.queues.get(q.queue_id)
        mem = QueueMemory(q.description, dict(old.open) if old is not None else {})
        target = Target("queue", q.queue_id)
        for rule in QUEUE_RULES:
            cfg = ruleset.enabled(rule)
            holds, value = (False, "") if cfg is None else _queue_value(rule, q, cfg)

            def details(
                c: OpenCondition, q: QueueObservation = q, value: str = value,
                cfg: RuleConfig | None = cfg,
            ) -> dict[str, str]:  # fmt: skip
                d = {
                    "name": q.description,
                    "queue_name": q.description,
                    "value": value,
                    "held_for": _fmt(now - c.since),
                }
                if cfg is not None and cfg.threshold is not None:
                    d["threshold"] = f"{cfg.threshold:g}"
                return d

            cond = step(emit, rule, cfg, mem.open.pop(rule, None), target, holds=holds,
                        start=now, ended=now, details=details)  # fmt: skip
            if cond is not None:
                mem.open[rule] = cond
        new.queues[q.queue_id] = mem
    emit.out.sort(key=_transition_order)
    return QueueResult(new, emit.out)


# --- staleness -------------------------------------------------------------------------------


def evaluate_staleness(
    state: EngineState,
    *,
    tenant: str,
    now: datetime,
    last_success: Mapping[str, datetime],
    ruleset: RuleSet,
) -> StalenessResult:
    """stale_data: an endpoint has had no successful poll for `after`.

    The condition runs from the last success; a newer success ends it (ideal resolve time = that
    success). Pass the service start time for endpoints that have not succeeded yet.
    """
    now = _utc(now)
    new = state.shallow_copy()
    new.tenant = tenant
    emit = Emitter(tenant, now)
    cfg = ruleset.enabled(RuleName.STALE_DATA)
    rule = RuleName.STALE_DATA
    after = cfg.after if cfg is not None else timedelta(0)
    for endpoint in sorted(set(last_success) | set(new.stale)):
        cond = new.stale.pop(endpoint, None)
        last = last_success.get(endpoint)
        target = Target("tenant", endpoint)
        if cfg is None or last is None:
            step(
                emit, rule, cfg, cond, target, holds=False, start=now, ended=now, details=no_details
            )
            continue
        last = _utc(last)
        if cond is not None and last > cond.since:  # a success since: that episode ended then
            cond = step(emit, rule, cfg, cond, target, holds=False, start=last, ended=last,
                        details=no_details)  # fmt: skip

        def details(c: OpenCondition, endpoint: str = endpoint) -> dict[str, str]:
            return {
                "name": endpoint,
                "value": _iso(c.since),
                "held_for": _fmt(now - c.since),
                "threshold": _fmt(after),
            }

        new.stale[endpoint] = fire_if_due(
            emit, rule, cfg, cond or OpenCondition(since=last), target, now=now, details=details
        )
    emit.out.sort(key=_transition_order)
    return StalenessResult(new, emit.out)
