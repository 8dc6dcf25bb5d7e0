"""Typed, timestamped snapshots: what one poll saw. Produced by the pollers, read by the engine
and the exporter. Pure data; nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from monitor.core.states import AgentState


@dataclass(frozen=True, slots=True)
class AgentObservation:
    """One agent as seen by a poll.

    `since` is when the agent entered `state`: exact when a per-user status duration was fetched,
    otherwise derived from poll-to-poll transitions by the tracker (the first poll that saw it).
    `since_exact` says which. `first_seen` marks a `since` that is only when the monitor first
    saw the agent in this state (it was already in it then), so the true duration is longer.
    """

    agent_id: str
    name: str
    team: str  # the Puzzel user group name
    state: AgentState
    since: datetime
    since_exact: bool = False
    calls_offered: int = 0
    calls_answered: int = 0
    first_seen: bool = False

    @property
    def entry(self) -> str:
        """Where `since` comes from: `exact`, `transition` (a poll saw the change) or
        `first_seen` (a lower bound: the state began before the monitor saw the agent)."""
        if self.since_exact:
            return "exact"
        return "first_seen" if self.first_seen else "transition"


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """One user-group state poll (AgentStateAndTickerList) for one tenant and group."""

    tenant: str
    team: str
    taken_at: datetime
    agents: tuple[AgentObservation, ...]


@dataclass(frozen=True, slots=True)
class QueueObservation:
    """One visual queue's state and today-ticker, as Puzzel's visual-queue state information.

    None is "Puzzel did not report it": no rule holds on it and no series is exported for it."""

    queue_id: str
    description: str
    queue_size: int | None = 0
    wait_time_max_seconds: float | None = 0.0
    wait_time_average_seconds: float | None = 0.0
    agents_logged_on: int | None = 0
    agents_ready: int | None = 0
    agents_in_pause: int | None = 0
    agents_unavailable: int | None = 0
    calls_offered_today: int | None = 0
    calls_answered_today: int | None = 0
    calls_abandoned_today: int | None = 0
    calls_answered_within_sla: int | None = 0
    sla_percent: float | None = 100.0
    alarm: bool = False


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    tenant: str
    taken_at: datetime
    queues: tuple[QueueObservation, ...]


@dataclass(frozen=True, slots=True)
class TickerRow:
    """A row of a today-ticker (visual-queue ticker, access-point ticker or agent stats)."""

    key: str  # queue id, access point, or agent id
    description: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TickerSnapshot:
    tenant: str
    kind: str  # "visual_queue_ticker" | "access_point_tickers" | "agent_stats"
    taken_at: datetime
    rows: tuple[TickerRow, ...]
