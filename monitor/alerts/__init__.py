"""Alert delivery: Alertmanager-shaped alerts, a durable Redis outbox, routing and noise control,
sinks (Slack, signed webhook, Alertmanager v2, console), snooze/ack API and delivery metrics."""
