"""Adherence history: daily records per agent, team and interval, kept in Redis, and reports."""
