"""The history's Redis keys are in `monitor.core.keys.RedisKeys` with every other key; this is
the separator of the parts of its hash field names."""

from __future__ import annotations

SEP = "\x1f"  # agent ids and team names may hold anything printable
