"""The adherence rules engine: pure and deterministic.

Given what the engine remembers (`EngineState`), the latest observations, the schedules and the
rules, it returns a new state, where every agent stands, the alert transitions and the seconds
accrued for the adherence/conformance counters. It imports nothing that does I/O and never reads
a clock: `now` is an argument.

Timeline model. Between two evaluations the engine knows one thing about an agent's state: the
state now and when it was entered (`AgentObservation.since`). It assumes at most one change in
between, at `since`. The interval from the last evaluation to `now` is cut at that change, at
every schedule-segment boundary and at every break-overrun threshold; each piece has one state
and one scheduled segment, so conditions and accruals are exact on pieces. A condition starts at
the exact moment it began to hold (state entry, segment boundary, pause length exceeding the
break), fires at the first evaluation where it has held for `after`, and resolves at the first
evaluation where it no longer holds, with `ideal_at` the moment it stopped.
"""

from __future__ import annotations

from monitor.engine.agents import AGENT_RULES, AgentResult, account_until, evaluate_agents, next_due
from monitor.engine.conditions import OpenCondition
from monitor.engine.groups import (
    QUEUE_RULES,
    QueueResult,
    StalenessResult,
    evaluate_queues,
    evaluate_staleness,
)
from monitor.engine.memory import AgentMemory, EngineState, QueueMemory, TeamMemory
from monitor.engine.schedule import ScheduleIndex, index_schedules

__all__ = [
    "AGENT_RULES",
    "QUEUE_RULES",
    "AgentMemory",
    "AgentResult",
    "EngineState",
    "OpenCondition",
    "QueueMemory",
    "QueueResult",
    "ScheduleIndex",
    "StalenessResult",
    "TeamMemory",
    "account_until",
    "evaluate_agents",
    "evaluate_queues",
    "evaluate_staleness",
    "index_schedules",
    "next_due",
]
