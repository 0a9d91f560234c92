"""Facts Tier Two providers send in (responses to handoffs, attendance), applied the same
way whichever door they come in by: the Kafka consumer or the HTTP API."""
