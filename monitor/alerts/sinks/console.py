"""One line per notification on a text stream (`run` in a terminal, the demo)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from monitor.alerts.model import Alert
from monitor.alerts.sinks.base import Delivery


def console_line(alert: Alert) -> str:
    """`FIRING  break_overrun  agent 1001 (tenant 12345)  <summary>` as one line."""
    status = "🔥 firing  " if alert.status == "firing" else "✅ resolved"
    rule = alert.labels.get("rule", alert.labels["alertname"])
    tenant = alert.labels.get("tenant", "")
    summary = alert.annotations.get("summary", "").replace("\n", " ")
    return f"{status} {rule} {alert.subject} (tenant {tenant}): {summary}"


class ConsoleSink:
    def __init__(self, stream: TextIO | None = None, *, max_batch: int = 100) -> None:
        self._stream = stream
        self._max_batch = max_batch

    @property
    def max_batch(self) -> int:
        return self._max_batch

    async def send(self, batch: Sequence[Alert], deliveries: Sequence[Delivery] = ()) -> None:
        out = self._stream or sys.stdout
        for alert in batch:
            out.write(console_line(alert) + "\n")
        out.flush()
