"""Alert sinks: Slack, signed webhook, Alertmanager v2, console."""

from monitor.alerts.sinks.base import Sink, SinkError

__all__ = ["Sink", "SinkError"]
