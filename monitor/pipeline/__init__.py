"""One tenant's cycle: schedules and snapshots through the engine, transitions to the outbox,
engine state persisted (`cycle`, `state_store`)."""
