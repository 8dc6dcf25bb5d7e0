"""Typed, timestamped snapshots: what one poll saw. Produced by the pollers, read by the engine
and the exporter. Pure data; nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from monitor.states import AgentState


@dataclass(frozen=True, slots=True)
class AgentObservation:
    """One agent as seen by a poll.

    `since` is when the agent entered `state`: exact when a per-user status duration was fetched,
    otherwise derived from poll-to-poll transitions by the tracker (the first poll that saw it).
    `since_exact` says which.
    """

    agent_id: str
    name: str
    team: str  # the Puzzel user group name
    state: AgentState
    since: datetime
    since_exact: bool = False
    calls_offered: int = 0
    calls_answered: int = 0


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """One user-group state poll (AgentStateAndTickerList) for one tenant and group."""

    tenant: str
    team: str
    taken_at: datetime
    agents: tuple[AgentObservation, ...]


@dataclass(frozen=True, slots=True)
class QueueObservation:
    """One visual queue's state and today-ticker, as Puzzel's visual-queue state information."""

    queue_id: str
    description: str
    queue_size: int = 0
    wait_time_max_seconds: float = 0.0
    wait_time_average_seconds: float = 0.0
    agents_logged_on: int = 0
    agents_ready: int = 0
    agents_in_pause: int = 0
    agents_unavailable: int = 0
    calls_offered_today: int = 0
    calls_answered_today: int = 0
    calls_abandoned_today: int = 0
    calls_answered_within_sla: int = 0
    sla_percent: float = 100.0
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
