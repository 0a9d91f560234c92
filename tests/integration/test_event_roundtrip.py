"""Every event type through a real broker: produced the way the relay produces (kafka-python,
``acks=all``, idempotent), read back, parsed by the catalogue and validated against the
JSON Schema committed under docs/events/schemas."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from events.catalogue import parse, registry
from events.examples import example, example_event
from messaging.asyncapi import SCHEMAS_DIR
from messaging.producer import CLOUDEVENTS_CONTENT_TYPE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3


def fresh_topic(bootstrap: str) -> str:
    name = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-roundtrip")
    try:
        admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        admin.close()
    return name


def produce(bootstrap: str, topic: str, types: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        for type_ in types:
            event = example_event(type_)
            producer.send(
                topic,
                key=event.key,
                value=event.to_bytes(),
                headers=[("content-type", CLOUDEVENTS_CONTENT_TYPE)],
            ).get(timeout=30)
    finally:
        producer.close(timeout=5)


def consume(bootstrap: str, topic: str, want: int, timeout: float = 20) -> list:
    # Manual assignment: no group join, so the records are readable at once.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        records: list = []
        deadline = time.monotonic() + timeout
        while len(records) < want and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_every_event_type_round_trips_through_kafka_and_matches_its_schema(broker: str):
    types = sorted(registry())
    topic = fresh_topic(broker)
    produce(broker, topic, types)
    records = consume(broker, topic, want=len(types))

    # Every example is about one referral: one key, one partition, the order it was sent.
    assert [json.loads(r.value)["type"] for r in records] == types
    assert len({r.partition for r in records}) == 1
    for record in records:
        envelope, data = parse(record.value)
        assert record.key == envelope.subject.encode()
        assert dict(record.headers)["content-type"] == CLOUDEVENTS_CONTENT_TYPE
        assert data == example(envelope.type)
        schema_file = ROOT / SCHEMAS_DIR / f"{envelope.type}.json"
        schema = json.loads(schema_file.read_text())
        Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
            json.loads(record.value)
        )
