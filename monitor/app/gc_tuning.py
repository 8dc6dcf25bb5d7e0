"""The garbage collector's settings for a long-running monitor (and `replay`, the benchmarks).

Measured at 10,000 agents (`python -m bench --only cycle`, 2026-12-01): with CPython's default
thresholds (700, 10, 10) a full collection ran in nearly every 5 s cycle and cost 300-600 ms of
CPU, as much as the rest of the cycle, because each cycle replaces the engine's memory of every
agent and the survivors count toward the next full collection, which then walks every object
of the process (the modules, the configuration, the schedules, the snapshots). Freezing what
exists after start-up takes those out of every collection, and a larger young generation
collects less often for the same garbage: full collections then became rare and a cycle spends
some 60-130 ms in the collector. Nearly everything the monitor frees is freed by reference
counting; the collector only has to find cycles, which these settings still do.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 100)


def tune_gc() -> None:
    """Freeze the objects that exist now (call once start-up is done) and set `THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
