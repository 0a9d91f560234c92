"""The relay's Kafka producer: settings that cannot lose an event (``acks=all``,
idempotence) or refusal to start, the record headers an event travels with, a send
under the event's own trace context, and the broker's log ends the relay compares with
what it has published."""

from __future__ import annotations

import json
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.producer.future import FutureRecordMetadata
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.instrumentation.kafka import KafkaInstrumentor

from infra.settings import Settings

CLOUDEVENTS_CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"
_BARE = (("content-type", CLOUDEVENTS_CONTENT_TYPE),)


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


def broker_log_ends(settings: Settings, topics: list[str]) -> dict[str, dict[int, int]]:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="linkway-relay",
        enable_auto_commit=False,
        request_timeout_ms=15_000,
        bootstrap_timeout_ms=10_000,
    )
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic))
        ]
        ends = consumer.end_offsets(partitions, timeout_ms=10_000) if partitions else {}
    finally:
        consumer.close()
    found: dict[str, dict[int, int]] = {}
    for tp, end in ends.items():
        found.setdefault(tp.topic, {})[tp.partition] = end
    return found


class Record(Protocol):
    """What a send needs of an outbox row: an ``OutboxRow`` or a plain row of its columns
    (``outbox.pending``)."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def payload(self) -> str: ...
    @property
    def headers(self) -> str: ...


def record_headers(row: Record) -> list[tuple[str, bytes]]:
    """The structured-mode marker, and the trace context the row was written under."""
    return _headers(json.loads(row.headers))


def _headers(carried: dict[str, str]) -> list[tuple[str, bytes]]:
    return [("content-type", CLOUDEVENTS_CONTENT_TYPE)] + [
        (k, v.encode()) for k, v in carried.items()
    ]


def traced_send(
    producer: KafkaProducer, row: Record, extra: list[tuple[str, bytes]]
) -> FutureRecordMetadata:
    """Send a row under the trace context it was written in.

    With OpenTelemetry's kafka-python instrumentation on (``infra.telemetry`` turns it
    on), ``send`` opens a producer span, a child of the row's context attached here, and
    injects that span's context into the headers: so the consumers' spans hang under the
    relay's publish, in the trace that began with the HTTP request. Without it, the row's
    own context goes in the headers, as written, and the trace still joins up.

    The row's headers are parsed once; without the instrumentation no context is
    attached (the plain producer reads none).
    """
    carried: dict[str, str] = json.loads(row.headers)
    value, key = row.payload.encode(), row.key.encode()
    if not KafkaInstrumentor().is_instrumented_by_opentelemetry:
        return producer.send(row.topic, value=value, key=key, headers=_headers(carried) + extra)
    token = otel_context.attach(propagate.extract(carried))
    try:
        return producer.send(row.topic, value=value, key=key, headers=[*_BARE, *extra])
    finally:
        otel_context.detach(token)
