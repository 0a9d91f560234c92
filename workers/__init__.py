"""Linkway's long-running processes: the Temporal worker and the outbox relay."""
