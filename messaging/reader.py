"""Reading a topic from the start without joining a consumer group: for operators, the
README walkthrough and tests. Partitions are assigned directly, so it starts at once."""

from __future__ import annotations

from collections.abc import Iterator

from kafka import KafkaConsumer, TopicPartition


def read(
    bootstrap: str, topic: str, follow: bool = False, idle_ms: int = 1500
) -> Iterator[tuple[bytes | None, bytes, dict[str, bytes]]]:
    """Yield (key, value, headers) from the beginning of every partition of ``topic``.
    Stops after ``idle_ms`` without a message, unless ``follow``."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=float("inf") if follow else idle_ms,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise LookupError(f"no topic {topic!r} on {bootstrap}")
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        for message in consumer:
            yield message.key, message.value, dict(message.headers or [])
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    return [(key, value) for key, value, _ in read(bootstrap, topic)]


def read_many(
    bootstrap: str, topics: list[str], idle_ms: int = 1500
) -> Iterator[tuple[str, bytes | None, bytes, dict[str, bytes]]]:
    """Yield (topic, key, value, headers) from the beginning of every partition of every
    topic in ``topics`` with one consumer, stopping after ``idle_ms`` without a message
    (one wait for them all, not one per topic). Topics that do not exist are skipped.
    Each partition is read in order; partitions interleave."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=idle_ms
    )
    try:
        assigned = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not assigned:
            return
        consumer.assign(assigned)
        consumer.seek_to_beginning()
        for message in consumer:
            yield message.topic, message.key, message.value, dict(message.headers or [])
    finally:
        consumer.close()
