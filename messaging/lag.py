"""Consumer lag: how far a consumer group's committed offsets are behind the log's end.

Read from the broker (the group's committed offsets and each partition's end), so it is
the same answer whichever process asks: the relay's gauges and ``linkway status`` both
use it. A partition the group has never committed counts from its start, as the group
would read it (``auto_offset_reset="earliest"``).
"""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from infra.settings import Settings

TIMEOUT_MS = 5_000


def group_lag(settings: Settings, groups: dict[str, list[str]]) -> dict[str, int]:
    """Total lag per consumer group, for ``groups`` = {group id: its topics}."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="linkway-lag",
        request_timeout_ms=TIMEOUT_MS,
        bootstrap_timeout_ms=TIMEOUT_MS,
    )
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="linkway-lag",
        enable_auto_commit=False,
        request_timeout_ms=TIMEOUT_MS + 1_000,
        bootstrap_timeout_ms=TIMEOUT_MS,
    )
    try:
        lag: dict[str, int] = {}
        for group, topics in groups.items():
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                continue
            ends = consumer.end_offsets(partitions, timeout_ms=TIMEOUT_MS)
            committed = admin.list_group_offsets({group: partitions}).get(group, {})
            lag[group] = sum(
                max(ends[tp] - max(getattr(committed.get(tp), "offset", 0) or 0, 0), 0)
                for tp in partitions
            )
        return lag
    finally:
        consumer.close()
        admin.close()
