"""Routing and the pure parts of noise control: which sinks an alert goes to, whether a route is in
its quiet hours (and until when), when a still-firing alert is due a repeat or an escalation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.alerts.config import AlertingConfig, Matchers, QuietHoursConfig, SlackDmSinkConfig
from monitor.alerts.model import Alert

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """Local `start`..`end` on `days` (the day the window starts); `end <= start` spans midnight."""

    start: time
    end: time
    tz: ZoneInfo
    days: frozenset[int] = frozenset(range(7))  # Monday = 0

    @classmethod
    def from_config(cls, c: QuietHoursConfig) -> QuietWindow:
        return cls(c.start, c.end, ZoneInfo(c.timezone), frozenset(_DAYS.index(d) for d in c.days))

    def active_until(self, now: datetime) -> datetime | None:
        """The end of the window `now` falls in (UTC), or None if `now` is outside every window."""
        local = now.astimezone(self.tz)
        overnight = self.end <= self.start
        # a window that started yesterday evening may still be running this morning
        for back in (0, 1) if overnight else (0,):
            day = local.date() - timedelta(days=back)
            if day.weekday() not in self.days:
                continue
            begin = datetime.combine(day, self.start, self.tz)
            end_day = day + timedelta(days=1) if overnight else day
            end = datetime.combine(end_day, self.end, self.tz)
            if begin <= local < end:
                return end.astimezone(UTC)
        return None


def quiet_until(windows: Sequence[QuietWindow], now: datetime) -> datetime | None:
    """When the quiet period covering `now` ends (following back-to-back windows), or None."""
    until: datetime | None = None
    probe = now
    for _ in range(8):  # a chain of adjacent windows is at most a week of days
        ends = [e for w in windows if (e := w.active_until(probe)) is not None]
        if not ends:
            break
        until = max(ends)
        probe = until
    return until


def matches(m: Matchers, labels: Mapping[str, str]) -> bool:
    return all(
        not accepted or labels.get(name, "") in accepted
        for name, accepted in (
            ("rule", m.rule),
            ("team", m.team),
            ("severity", m.severity),
            ("tenant", m.tenant),
        )
    )


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    matchers: Matchers
    sinks: tuple[str, ...]
    repeat_interval: timedelta
    quiet: tuple[QuietWindow, ...] = ()
    continue_: bool = False


@dataclass(frozen=True, slots=True)
class Escalation:
    name: str
    matchers: Matchers
    after: timedelta
    sinks: tuple[str, ...]
    quiet: tuple[QuietWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Router:
    """Routes in order (first match wins unless it says `continue`) plus escalations."""

    routes: tuple[Route, ...]
    escalations: tuple[Escalation, ...] = ()
    all_sinks: tuple[str, ...] = field(default=())
    # sinks that take only some alerts whatever the routes say: sink -> the agent rules it
    # takes (a direct message goes to the agent an alert is about, so only agent alerts)
    agent_rules_only: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: AlertingConfig) -> Router:
        default_quiet = tuple(QuietWindow.from_config(q) for q in config.quiet_hours)
        routes = tuple(
            Route(
                name=r.name,
                matchers=r.match,
                sinks=tuple(r.sinks),
                repeat_interval=(
                    r.repeat_interval if r.repeat_interval is not None else config.repeat_interval
                ),
                quiet=(
                    tuple(QuietWindow.from_config(q) for q in r.quiet_hours)
                    if r.quiet_hours is not None
                    else default_quiet
                ),
                continue_=r.continue_,
            )
            for r in config.routes
        )
        if not routes:
            routes = (
                Route(
                    name="default",
                    matchers=Matchers(),
                    sinks=tuple(config.sinks),
                    repeat_interval=config.repeat_interval,
                    quiet=default_quiet,
                ),
            )
        escalations = tuple(
            Escalation(e.name, e.match, e.after, tuple(e.sinks), default_quiet)
            for e in config.escalations
        )
        only = {
            name: frozenset(cfg.rules)
            for name, cfg in config.sinks.items()
            if isinstance(cfg, SlackDmSinkConfig)
        }
        return cls(routes, escalations, tuple(config.sinks), only)

    def takes(self, sink: str, alert: Alert) -> bool:
        """Whether `sink` takes `alert` at all (routes aside)."""
        rules = self.agent_rules_only.get(sink)
        if rules is None:
            return True
        return "agent" in alert.labels and alert.labels.get("alertname", "") in rules

    @classmethod
    def to_all(cls, sinks: Sequence[str], repeat_interval: timedelta = timedelta(0)) -> Router:
        route = Route("default", Matchers(), tuple(sinks), repeat_interval)
        return cls((route,), (), tuple(sinks))

    def match(self, alert: Alert) -> list[Route]:
        matched: list[Route] = []
        for route in self.routes:
            if matches(route.matchers, alert.labels):
                matched.append(route)
                if not route.continue_:
                    break
        return matched

    def escalations_for(self, alert: Alert) -> list[Escalation]:
        return [e for e in self.escalations if matches(e.matchers, alert.labels)]

    def targets(
        self, alert: Alert, now: datetime, *, include_escalations: bool = False
    ) -> dict[str, datetime | None]:
        """Sink -> the time until which its notification is held (None: deliver now).

        A sink reached by several routes is held only as long as the shortest hold.
        """
        out: dict[str, datetime | None] = {}
        pairs: list[tuple[Sequence[str], Sequence[QuietWindow]]] = [
            (r.sinks, r.quiet) for r in self.match(alert)
        ]
        if include_escalations:
            pairs += [(e.sinks, e.quiet) for e in self.escalations_for(alert)]
        for sinks, quiet in pairs:
            hold = quiet_until(quiet, now)
            for sink in (s for s in sinks if self.takes(s, alert)):
                if sink in out:
                    prev = out[sink]
                    out[sink] = None if prev is None or hold is None else min(prev, hold)
                else:
                    out[sink] = hold
        return out


def repeat_due(last_sent: datetime, interval: timedelta, now: datetime) -> bool:
    """Whether a still-firing alert last notified at `last_sent` is due a repeat."""
    return interval > timedelta(0) and now - last_sent >= interval


def escalation_due(starts_at: datetime, after: timedelta, now: datetime) -> bool:
    return now - starts_at >= after
