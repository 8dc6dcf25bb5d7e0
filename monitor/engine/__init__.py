"""The rules engine: pure and deterministic. Given snapshots, schedules, rules and `now`, it
returns evaluations and alert transitions. It imports nothing that does I/O."""
