"""Kafka plumbing: an admin client that waits for the broker to come up."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from infra.settings import Settings


def admin_client(settings: Settings, timeout: float = 30) -> KafkaAdminClient:
    """An admin client, retrying while the broker is not up yet; the caller closes it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap, client_id="linkway-topics"
            )
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
