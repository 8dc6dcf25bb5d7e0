"""What reaches us from Puzzel, on cadences: the scheduler (`cadence`), the pollers and the
state tracker that turns polls into snapshots with state-entry times."""
