"""Topic provisioning with kafka-python's admin client (a synchronous job at start-up)."""

from __future__ import annotations

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from events.topics import core_topics, retention_ms
from infra.kafka import admin_client
from infra.settings import Settings


def provision(settings: Settings, extra: list[str] | None = None, timeout: float = 30) -> list[str]:
    """Create Linkway's topics (and ``extra`` ones) if missing; returns the names created."""
    admin = admin_client(settings, timeout)
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in [*core_topics(), *(extra or [])] if t not in existing]
        created = []
        for name in wanted:
            topic = NewTopic(
                name=name,
                num_partitions=settings.kafka_partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs={"retention.ms": str(retention_ms(name))},
            )
            try:
                admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
