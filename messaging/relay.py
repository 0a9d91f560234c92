"""The outbox relay: publishes outbox rows to Kafka in commit order, then marks them.

Delivery is at-least-once by design (a crash between the broker's acknowledgement and
the mark re-publishes the row), and every consumer is idempotent by event id, so the
effect is exactly once. While the broker is down the relay backs off and retries the
same rows; it never skips one and never marks a row the broker has not acknowledged.

The relay is a plain loop around a synchronous producer, so it uses kafka-python's
idempotent producer (``acks=all``): it is also the client that speaks the idempotent
producer protocol to both Apache Kafka and the embedded broker.

After a failed batch the relay throws its producer away and starts the next attempt
with a new one. A producer that has seen an error may be in a fatal state for good:
kafka-python's producer cannot bump its epoch on a broker that lost its producer state
(an in-memory broker that restarted), and every later send would fail.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from infra.db import transaction
from infra.settings import Settings
from messaging.outbox import OutboxRow, unpublished

log = logging.getLogger("linkway.relay")

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"
MAX_BACKOFF_SECONDS = 30.0
# Longer than the producer's delivery timeout, so every send has settled by then.
SEND_TIMEOUT_SECONDS = 30.0
# After stop(), sends already made get this long to be acknowledged (and marked).
STOP_GRACE_SECONDS = 2.0


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


def check_producer(producer: KafkaProducer) -> None:
    """Refuse a producer whose effective settings are unsafe, however it was built:
    kafka-python turns idempotence off by itself when other settings conflict with it."""
    problems = []
    if producer.config["acks"] not in (-1, "all"):
        problems.append(f"the producer's acks is {producer.config['acks']!r}; it must be 'all'")
    if not producer.config["enable_idempotence"]:
        problems.append("the producer's enable_idempotence is off; it must be on")
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
        # Bounds on every blocking call, so stop() takes effect within about 10 s even
        # while the broker is down: send() waits this long for metadata, and a new
        # producer (the constructor asks the broker for its version) as long to connect.
        "max_block_ms": 10_000,
        "bootstrap_timeout_ms": 10_000,
    }


def make_producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(**producer_config(settings))


def record_headers(row: OutboxRow) -> list[tuple[str, bytes]]:
    """The structured-mode marker, and the trace context the row was written under."""
    headers = [("content-type", CLOUDEVENTS_CONTENT_TYPE)]
    return headers + [(k, v.encode()) for k, v in json.loads(row.headers).items()]


class OutboxRelay:
    """Publishes the outbox. It owns its producer: it replaces it after a failure (with
    ``new_producer``, by default one from ``settings``) and closes it when ``run`` returns.
    """

    def __init__(
        self,
        engine: Engine,
        producer: KafkaProducer,
        settings: Settings,
        *,
        new_producer: Callable[[], KafkaProducer] | None = None,
    ) -> None:
        check_producer(producer)
        self.engine = engine
        self.producer: KafkaProducer | None = producer
        self._new_producer = new_producer or (lambda: make_producer(settings))
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
        producer = self._producer()
        sends: list[tuple[int, FutureRecordMetadata]] = []
        errors: list[Exception] = []  # in the order the producer reported them
        try:
            for row in rows:
                if self._stop.is_set():
                    break  # the rest waits for the next run; nothing is lost
                assert row.seq is not None
                sends.append((row.seq, self._send(producer, row, errors)))
        except Exception as exc:  # e.g. send() gave up waiting for metadata: the broker is away
            errors.append(exc)
        self._settle(sends)
        acknowledged: list[int] = []
        for seq, future in sends:
            if not future.succeeded():
                if not future.is_done and not self._stop.is_set():
                    errors.append(KafkaTimeoutError("no acknowledgement in time"))
                break
            acknowledged.append(seq)
        if acknowledged:
            self._mark(acknowledged)
        if errors:
            self._discard(producer)
            raise errors[0]  # the cause: the rest were aborted because of it
        return len(acknowledged)

    def _producer(self) -> KafkaProducer:
        if self.producer is None:
            producer = self._new_producer()
            check_producer(producer)
            self.producer = producer
        return self.producer

    def _send(
        self, producer: KafkaProducer, row: OutboxRow, errors: list[Exception]
    ) -> FutureRecordMetadata:
        future = producer.send(
            row.topic, value=row.payload.encode(), key=row.key.encode(), headers=record_headers(row)
        )

        def failed(exc: Exception) -> None:
            # Stop the producer at the first failure: a later batch for the same partition
            # must not reach the broker ahead of the failed row's resend.
            errors.append(exc)
            _halt(producer)

        future.add_errback(failed)
        return future

    def _settle(self, sends: list[tuple[int, FutureRecordMetadata]]) -> None:
        """Wait until every send succeeded or failed, but not for long after stop()."""
        deadline = time.monotonic() + SEND_TIMEOUT_SECONDS
        while not all(future.is_done for _, future in sends):
            now = time.monotonic()
            if self._stop.is_set():
                deadline = min(deadline, now + STOP_GRACE_SECONDS)
            if now >= deadline:
                return
            time.sleep(0.005)

    def _discard(self, producer: KafkaProducer) -> None:
        _close(producer, timeout=0)
        if self.producer is producer:
            self.producer = None

    def _mark(self, seqs: list[int]) -> None:
        with transaction(self.engine) as session:
            session.execute(
                update(OutboxRow)
                .where(col(OutboxRow.seq).in_(seqs))
                .values(published_at=datetime.now(UTC))
            )

    def run(self) -> None:
        backoff = self.poll_seconds
        try:
            while not self._stop.is_set():
                try:
                    count = self.publish_pending()
                    backoff = self.poll_seconds
                except Exception as exc:
                    log.warning(
                        "relay: publish failed (%s); retrying in %.1fs",
                        *(type(exc).__name__, backoff),
                    )
                    self._stop.wait(backoff)
                    backoff = min(max(backoff, 0.5) * 2, MAX_BACKOFF_SECONDS)
                    continue
                if count < self.batch_size:
                    self._stop.wait(self.poll_seconds)
        finally:
            if self.producer is not None:
                # The last batch has had its grace already; what is still pending stays
                # unmarked and goes again next time.
                _close(self.producer, timeout=0)
                self.producer = None

    def stop(self) -> None:
        """Ask ``run`` to return. It does within about ``max_block_ms`` (10 s) even while
        the broker is down; rows sent but not yet acknowledged stay unmarked."""
        self._stop.set()


def _halt(producer: KafkaProducer) -> None:
    """Stop the producer's I/O thread now, failing every pending send. Safe from any
    thread, the producer's own included (an errback runs there)."""
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()


def _close(producer: KafkaProducer, timeout: float) -> None:
    """Close, dropping whatever is still pending after ``timeout`` seconds."""
    try:
        producer.close(timeout=timeout)
        return
    except KafkaError:
        # close() flushes first and raises when records are still pending, before it would
        # force-close; so force it here, then close what is left.
        pass
    _halt(producer)
    sender = getattr(producer, "_sender", None)
    if sender is not None and sender is not threading.current_thread():
        sender.join(STOP_GRACE_SECONDS)
    try:
        producer.close(timeout=0)
    except KafkaError:
        log.debug("relay: a producer did not close cleanly", exc_info=True)
