"""puzzel-monitor: real-time telemetry and WFM adherence monitoring for Puzzel contact centres."""

__version__ = "0.1.0"
