"""Approved time ranges as an input of the agent rules (pure).

An approval excuses one agent over a time range: inside it, the rules about the agent's own
conduct (`EXCUSABLE`) do not hold, so an open exception resolves through the one
pending -> firing -> resolved loop, with the approval as its resolution. When the range ends
and the agent is still out, the condition begins to hold again at the range's end: a new
exception, pending from then, that fires after the rule's `after` like any other. The rules
about the data (unmapped_state, unknown_agent) are not excused: an approval says nothing about
them.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from datetime import datetime

from monitor.engine.model import ApprovedRange, RuleName

EXCUSABLE: frozenset[RuleName] = frozenset(
    {
        RuleName.OUT_OF_ADHERENCE,
        RuleName.LATE_LOGIN,
        RuleName.EARLY_LOGOFF,
        RuleName.BREAK_OVERRUN,
        RuleName.LONG_WRAP_UP,
        RuleName.LONG_PAUSE,
        RuleName.UNSCHEDULED_LOGIN,
    }
)

# agent id -> its approved ranges
Approvals = Mapping[str, Sequence[ApprovedRange]]


def overlapping(windows: Sequence[ApprovedRange], a: datetime, b: datetime) -> bool:
    """Whether any range touches [a, b]: the agent's evaluation must then look closely."""
    return any(w.start <= b and w.end >= a for w in windows)


def bounds_in(windows: Sequence[ApprovedRange], a: datetime, b: datetime) -> set[datetime]:
    """The ranges' starts and ends in (a, b]: where a condition may stop or start again."""
    return {t for w in windows for t in (w.start, w.end) if a < t <= b}


def excuse(
    holding: MutableMapping[RuleName, datetime], t: datetime, windows: Sequence[ApprovedRange]
) -> ApprovedRange | None:
    """Take the approval in force at `t` into account in `holding` (rule -> since when it
    holds): inside a range the excusable rules do not hold (that range is returned); after one,
    a condition that held through it holds only since its end."""
    if not windows:
        return None
    for w in windows:
        if w.start <= t < w.end:
            for rule in EXCUSABLE:
                holding.pop(rule, None)
            return w
    for rule, since in holding.items():
        if rule in EXCUSABLE:
            ends = [w.end for w in windows if since < w.end <= t]
            if ends:
                holding[rule] = max(ends)
    return None
