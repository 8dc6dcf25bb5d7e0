"""The application: configuration, logging, the one wiring of a monitor (`wiring`), the
`run` service, `doctor`, the schedules CLI and the test helpers' private Redis."""
