"""The engine's vocabulary: schedule segments, activities, rules, evaluations, alert transitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from monitor.core.states import AgentState


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """One scheduled segment for one agent. Times are timezone-aware UTC; end > start."""

    start: datetime
    end: datetime
    agent_id: str
    activity: str


@dataclass(frozen=True, slots=True)
class Activity:
    """An activity and the states it allows.

    `allowed` holds scenario-vocabulary patterns: `available`, `pause` (any pause type),
    `pause:Break` (that type only), `logged_off`.
    `neutral` activities count neither for nor against adherence.
    """

    name: str
    allowed: frozenset[str]
    neutral: bool = False

    def allows(self, state: AgentState) -> bool:
        # StateKind is a StrEnum: the member itself matches its value in a set of str (without
        # the enum's `.value` lookup, measurable at thousands of agents per cycle)
        if state.kind in self.allowed:
            return True
        return state.pause_type is not None and f"pause:{state.pause_type}" in self.allowed


class RuleName(StrEnum):
    # the rules of scenario-format.md (names fixed by the contract)
    OUT_OF_ADHERENCE = "out_of_adherence"
    LATE_LOGIN = "late_login"
    EARLY_LOGOFF = "early_logoff"
    BREAK_OVERRUN = "break_overrun"
    LONG_WRAP_UP = "long_wrap_up"
    LONG_PAUSE = "long_pause"
    UNSCHEDULED_LOGIN = "unscheduled_login"
    QUEUE_SLA_BELOW = "queue_sla_below"
    QUEUE_WAIT_ABOVE = "queue_wait_above"
    QUEUE_NO_AGENTS_READY = "queue_no_agents_ready"
    # operator rules beyond the contract
    TEAM_ADHERENCE_BELOW = "team_adherence_below"
    STALE_DATA = "stale_data"
    UNMAPPED_STATE = "unmapped_state"
    UNKNOWN_AGENT = "unknown_agent"


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: RuleName
    after: timedelta = timedelta(0)
    threshold: float | None = None
    pause_type: str | None = None
    severity: str = "warning"
    enabled: bool = True
    # an optional second, longer threshold after which the alert escalates
    escalate_after: timedelta | None = None
    # added after the first contract (optional, backwards compatible):
    window: timedelta | None = None  # team_adherence_below: trailing window (default 30 min)
    labels: dict[str, str] = field(default_factory=dict)  # extra alert labels (routing)
    runbook_url: str | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    activities: dict[str, Activity]
    rules: dict[RuleName, RuleConfig]
    productive_activity: str = "phone"  # conformance: time in its allowed states / time scheduled
    # activities whose segments break_overrun measures a pause against (contiguous ones merge)
    break_activities: frozenset[str] = frozenset({"break", "lunch"})

    def enabled(self, name: RuleName) -> RuleConfig | None:
        rule = self.rules.get(name)
        return rule if rule is not None and rule.enabled else None


@dataclass(frozen=True, slots=True)
class AgentEvaluation:
    """Where one agent stands at `now`."""

    agent_id: str
    team: str
    state: AgentState
    state_since: datetime
    activity: str | None  # scheduled now, or None if unscheduled
    adherent: bool | None  # None when unscheduled or neutral
    adherent_since: datetime | None  # since when the adherent flag has had its current value


Subject = Literal["agent", "queue", "team", "tenant"]


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """An alert firing or resolving.

    `at` is the evaluation time at which the engine noticed; `ideal_at` is when the condition had
    held for exactly `after` (firing) or stopped holding (resolved), as far as the engine can tell.
    """

    rule: RuleName
    status: Literal["firing", "resolved"]
    tenant: str
    subject: Subject
    subject_id: str
    team: str | None
    severity: str
    at: datetime
    ideal_at: datetime
    condition_since: datetime  # when the condition started to hold
    details: dict[str, str] = field(default_factory=dict)  # activity, state, held_for, name...
    labels: dict[str, str] = field(default_factory=dict)  # extra labels from the rule's config

    @property
    def key(self) -> str:
        """Stable identity of the alert (rule + tenant + subject)."""
        return f"{self.rule.value}|{self.tenant}|{self.subject}|{self.subject_id}"


@dataclass(frozen=True, slots=True)
class ApprovedRange:
    """A supervisor's approval of a time range of one agent, as the engine sees it: inside it
    the agent's exceptions (`EXCUSABLE` rules) do not hold, so an open one resolves through the
    usual loop. `end` is the effective end: the approval's end, or its withdrawal if earlier
    (a withdrawal does not reach back: what was excused stays excused)."""

    agent_id: str
    start: datetime
    end: datetime
    by: str
    reason: str = ""

    @property
    def resolution(self) -> str:
        return f"approved by {self.by}: {self.reason}" if self.reason else f"approved by {self.by}"


@dataclass(frozen=True, slots=True)
class AccruedPiece:
    """A stretch of time in one state under one segment: what an accrual is made of, so that a
    history can file it by day and interval exactly (every second of a piece counts alike)."""

    start: datetime
    end: datetime
    shift_start: datetime | None  # the start of the shift it belongs to; None if unscheduled
    scheduled: bool
    adherent: bool
    productive: bool
    productive_scheduled: bool


@dataclass(frozen=True, slots=True)
class Accrual:
    """Seconds accumulated for one agent since the previous evaluation (for the counters)."""

    agent_id: str
    team: str
    scheduled_seconds: float = 0.0
    adherent_seconds: float = 0.0
    productive_seconds: float = 0.0  # in a productive-activity state, scheduled or not
    productive_scheduled_seconds: float = 0.0  # scheduled as the productive activity
    pieces: tuple[AccruedPiece, ...] = ()  # the same seconds, as timed pieces
