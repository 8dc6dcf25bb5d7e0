"""The one pending -> firing -> resolved step, shared by every rule (agents, teams, queues,
staleness), modelled on Prometheus's rule `Eval`.

A condition is *pending* from the moment it began to hold (`since`), *fires* at the first
evaluation where it has held for the rule's `after`, and *resolves* at the first evaluation where
it no longer holds, with the moment it stopped as the ideal resolve time. Pure: the caller passes
`now` and says whether the condition holds; transitions are collected by an `Emitter`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.core.durations import format_duration
from monitor.engine.model import AlertTransition, RuleConfig, RuleName, Subject


@dataclass(frozen=True, slots=True)
class OpenCondition:
    """A condition that holds now: since when, and whether its alert has fired.

    When firing it keeps what the firing transition said, so a restarted service can list its
    open alerts (`EngineState.firing_alerts`) and resolve them with the same identity.
    """

    since: datetime
    firing: bool = False
    fired_at: datetime | None = None
    fired_ideal_at: datetime | None = None
    severity: str = "warning"
    details: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"since": iso(self.since), "firing": self.firing}
        if self.firing:
            d |= {
                "fired_at": iso_opt(self.fired_at),
                "fired_ideal_at": iso_opt(self.fired_ideal_at),
                "severity": self.severity,
                "details": dict(self.details),
                "labels": dict(self.labels),
            }
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OpenCondition:
        return cls(
            since=parse_dt(d["since"]),
            firing=bool(d.get("firing", False)),
            fired_at=parse_dt_opt(d.get("fired_at")),
            fired_ideal_at=parse_dt_opt(d.get("fired_ideal_at")),
            severity=str(d.get("severity", "warning")),
            details={str(k): str(v) for k, v in (d.get("details") or {}).items()},
            labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Target:
    """What a condition is about: the alert's subject, its id and team."""

    subject: Subject
    sid: str
    team: str | None = None


class Emitter:
    """Collects the transitions of one evaluation at `now`."""

    def __init__(self, tenant: str, now: datetime) -> None:
        self.tenant = tenant
        self.now = now
        self.out: list[AlertTransition] = []

    def fire(
        self,
        rule: RuleName,
        cfg: RuleConfig,
        target: Target,
        *,
        since: datetime,
        details: dict[str, str],
    ) -> OpenCondition:
        ideal = since + cfg.after
        if cfg.runbook_url:
            details = details | {"runbook_url": cfg.runbook_url}
        self.out.append(
            AlertTransition(
                rule=rule,
                status="firing",
                tenant=self.tenant,
                subject=target.subject,
                subject_id=target.sid,
                team=target.team,
                severity=cfg.severity,
                at=self.now,
                ideal_at=ideal,
                condition_since=since,
                details=details,
                labels=dict(cfg.labels),
            )
        )
        return OpenCondition(
            since=since,
            firing=True,
            fired_at=self.now,
            fired_ideal_at=ideal,
            severity=cfg.severity,
            details=details,
            labels=dict(cfg.labels),
        )

    def resolve(
        self,
        rule: RuleName,
        cond: OpenCondition,
        target: Target,
        *,
        ended: datetime,
        reason: str | None = None,
    ) -> None:
        details = dict(cond.details)
        details["held_for"] = format_duration(ended - cond.since)
        if reason:
            details["resolution"] = reason  # why it stopped, when not the agent (an approval)
        self.out.append(
            AlertTransition(
                rule=rule,
                status="resolved",
                tenant=self.tenant,
                subject=target.subject,
                subject_id=target.sid,
                team=target.team,
                severity=cond.severity,
                at=self.now,
                ideal_at=ended,
                condition_since=cond.since,
                details=details,
                labels=dict(cond.labels),
            )
        )


Details = Callable[[OpenCondition], dict[str, str]]


def no_details(cond: OpenCondition) -> dict[str, str]:
    """For a step that can only resolve (resolves keep what the firing said)."""
    return {}


def step(
    emit: Emitter,
    rule: RuleName,
    cfg: RuleConfig | None,
    cond: OpenCondition | None,
    target: Target,
    *,
    holds: bool,
    start: datetime,
    ended: datetime,
    details: Details,
) -> OpenCondition | None:
    """One evaluation of one condition at `emit.now`: the condition after it (None when it
    does not hold). A new condition is pending from `start`; a firing one that stopped holding
    resolves with `ended` as its ideal time."""
    if not holds:
        if cond is not None and cond.firing:
            emit.resolve(rule, cond, target, ended=ended)
        return None
    if cond is None:
        cond = OpenCondition(since=start)
    return fire_if_due(emit, rule, cfg, cond, target, now=emit.now, details=details)


def fire_if_due(
    emit: Emitter,
    rule: RuleName,
    cfg: RuleConfig | None,
    cond: OpenCondition,
    target: Target,
    *,
    now: datetime,
    details: Details,
) -> OpenCondition:
    """Fire a pending condition that has held for the rule's `after` by `now`."""
    if cfg is None or cond.firing or now < cond.since + cfg.after:
        return cond
    return emit.fire(rule, cfg, target, since=cond.since, details=details(cond))


def close(
    emit: Emitter,
    rule: RuleName,
    cfg: RuleConfig | None,
    cond: OpenCondition,
    target: Target,
    *,
    ended: datetime,
    details: Details,
    reason: str | None = None,
) -> None:
    """A condition that stopped holding at `ended`, between two evaluations: a firing one
    resolves; a pending one that had held for `after` by then fires and resolves at once (no
    evaluation saw it due, but it was). `reason` says why it stopped when that was not the
    subject itself (an approval)."""
    if cond.firing:
        emit.resolve(rule, cond, target, ended=ended, reason=reason)
        return
    if cfg is not None and cond.since + cfg.after < ended:
        fired = emit.fire(rule, cfg, target, since=cond.since, details=details(cond))
        emit.resolve(rule, fired, target, ended=ended, reason=reason)


def transition_order(t: AlertTransition) -> tuple[datetime, str, str, int]:
    # a resolve and a firing of the same alert at the same ideal time: resolve first
    return (t.ideal_at, t.rule.value, t.subject_id, 0 if t.status == "resolved" else 1)


# --- time helpers shared by the engine's memory ----------------------------------------------


def utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t.isoformat()}; the engine needs timezone-aware times")
    return t.astimezone(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def iso_opt(t: datetime | None) -> str | None:
    return None if t is None else iso(t)


def parse_dt(s: Any) -> datetime:
    t = datetime.fromisoformat(str(s))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def parse_dt_opt(s: Any) -> datetime | None:
    return None if s is None else parse_dt(s)


def fmt(delta: timedelta) -> str:
    """`1h 5m`, `2m 30s`, `45s`."""
    return format_duration(delta)
