"""Durations written the way operators write them: `90s`, `2m`, `1h30m`, `2d`, `1w`, `0s`."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|w|d|h|m|s))+")
_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str | int | float) -> timedelta:
    """Parse `1h30m`, `2m`, `90s`, `250ms`, `2d`, `1w`, or a bare number of seconds.

    Raises ValueError naming the text and the expected form.
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like '90s', '2m', '1h30m' or '2d', got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative, got {text!r}")
        return timedelta(seconds=float(text))
    s = str(text).strip().replace(" ", "")
    if s.isdigit():
        return timedelta(seconds=int(s))
    if not _WHOLE.fullmatch(s):
        raise ValueError(f"expected a duration like '90s', '2m', '1h30m' or '2d', got {text!r}")
    total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(s))
    return timedelta(seconds=total)


def format_duration(delta: timedelta | float) -> str:
    """Render a duration compactly for humans (`1h 5m`, `2m 30s`, `45s`)."""
    seconds = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    seconds = max(seconds, 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m}m" if m else f"{h}h"
    if m:
        return f"{m}m {s}s" if s else f"{m}m"
    return f"{s}s"
