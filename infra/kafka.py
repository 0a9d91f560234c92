"""Topic provisioning with kafka-python's admin client (a synchronous job at start-up)."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from events.topics import core_topics
from infra.settings import Settings

# Dead-letter topics keep what they hold for a long time: it is evidence of a partner's
# problem that someone has to look at. Other topics keep a week; the outbox is the archive.
RETENTION_MS = {"default": 7 * 24 * 3600 * 1000, "dead_letter": 90 * 24 * 3600 * 1000}


def provision(settings: Settings, extra: list[str] | None = None, timeout: float = 30) -> list[str]:
    """Create Linkway's topics if missing; returns the names created."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap, client_id="linkway-topics"
            )
            break
        except KafkaError:  # the broker is not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in [*core_topics(), *(extra or [])] if t not in existing]
        created = []
        for name in wanted:
            kind = "dead_letter" if name.endswith(".dlq") else "default"
            topic = NewTopic(
                name=name,
                num_partitions=settings.kafka_partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs={"retention.ms": str(RETENTION_MS[kind])},
            )
            try:
                admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
