"""The outbox relay: publishes outbox rows to Kafka in commit order, then marks them.

Delivery is at-least-once by design (a crash between the broker's acknowledgement and
the mark re-publishes the row), and every consumer is idempotent by event id, so the
effect is exactly once. While the broker is down the relay backs off and retries the
same rows; it never skips one.

The relay is a plain loop around a synchronous producer, so it uses kafka-python's
idempotent producer (``acks=all``): it is also the client that speaks the idempotent
producer protocol to both Apache Kafka and the embedded broker.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from events.outbox import OutboxRow, unpublished
from infra.db import transaction
from infra.settings import Settings

log = logging.getLogger("linkway.relay")

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"
MAX_BACKOFF_SECONDS = 30.0
SEND_TIMEOUT_SECONDS = 30.0


class UnsafeProducerSettings(RuntimeError):
    """The relay refuses to start with settings that could lose or reorder events."""


def check_producer_settings(settings: Settings) -> None:
    problems = []
    if settings.kafka_acks != "all":
        problems.append(f"LINKWAY_KAFKA_ACKS is {settings.kafka_acks!r}; it must be 'all'")
    if not settings.kafka_enable_idempotence:
        problems.append("LINKWAY_KAFKA_ENABLE_IDEMPOTENCE is off; it must be on")
    if problems:
        raise UnsafeProducerSettings("; ".join(problems))


def producer_config(settings: Settings) -> dict[str, Any]:
    check_producer_settings(settings)
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": "linkway-relay",
        "acks": "all",
        # Idempotence keeps per-partition order with up to 5 requests in flight and makes
        # the producer's own retries safe.
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 5,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": 25_000,
        "max_block_ms": 10_000,
    }


def make_producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(**producer_config(settings))


class OutboxRelay:
    def __init__(self, engine: Engine, producer: KafkaProducer, settings: Settings) -> None:
        self.engine = engine
        self.producer = producer
        self.batch_size = settings.relay_batch_size
        self.poll_seconds = settings.relay_poll_seconds
        self._stop = threading.Event()

    def publish_pending(self) -> int:
        """Publish one batch in outbox order; returns how many rows were acknowledged.

        Only the acknowledged prefix of the batch is marked: if a row fails, it and every
        row after it are sent again next time, so no key's events are ever skipped.
        """
        with transaction(self.engine) as session:
            rows = unpublished(session, self.batch_size)
        if not rows:
            return 0
        futures: list[tuple[int, FutureRecordMetadata]] = []
        for row in rows:
            headers = [("content-type", CLOUDEVENTS_CONTENT_TYPE)]
            headers += [(k, v.encode()) for k, v in json.loads(row.headers).items()]
            future = self.producer.send(
                row.topic, value=row.payload.encode(), key=row.key.encode(), headers=headers
            )
            assert row.seq is not None
            futures.append((row.seq, future))
        self.producer.flush(timeout=SEND_TIMEOUT_SECONDS)
        acknowledged: list[int] = []
        failure: Exception | None = None
        for seq, future in futures:
            try:
                future.get(timeout=SEND_TIMEOUT_SECONDS)
            except Exception as exc:  # broker down or refused: stop at the first gap
                failure = exc
                break
            acknowledged.append(seq)
        if acknowledged:
            self._mark(acknowledged)
        if failure is not None:
            raise failure
        return len(acknowledged)

    def _mark(self, seqs: list[int]) -> None:
        with transaction(self.engine) as session:
            session.execute(
                update(OutboxRow)
                .where(col(OutboxRow.seq).in_(seqs))
                .values(published_at=datetime.now(UTC))
            )

    def run(self) -> None:
        backoff = self.poll_seconds
        while not self._stop.is_set():
            try:
                count = self.publish_pending()
                backoff = self.poll_seconds
            except Exception as exc:
                log.warning(
                    "relay: publish failed (%s); retrying in %.1fs", type(exc).__name__, backoff
                )
                self._stop.wait(backoff)
                backoff = min(max(backoff, 0.5) * 2, MAX_BACKOFF_SECONDS)
                continue
            if count < self.batch_size:
                self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()
