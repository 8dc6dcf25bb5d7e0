"""The vocabulary every layer shares; imports nothing else of `monitor`: agent states, the
snapshots pollers produce, durations and the clock."""
