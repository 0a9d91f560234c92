"""The reporting read models on the real broker: the consumer (``workers.reporting``) folds
the hand-built cohort from the topics, a redelivery changes nothing, and
``linkway rebuild reporting --fresh`` gives byte-identical exports of every KPI and of
the evaluation dataset."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from infra.settings import Settings
from messaging.consumer import Backoff, ProcessedEvent
from reporting import project, rebuild, synthetic
from reporting.tables import ReportDeadLetter
from tests.unit.test_reporting import cohort, exports, make_context, scratch

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

WAIT_SECONDS = 60


def publish(
    bootstrap: str, prefix: str, records: list[tuple[str, bytes, dict[str, bytes]]]
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for topic, value, headers in records:
            # Keyed by the referral, as Linkway keys them, so one referral's events keep
            # their order; a dead letter keeps no key here.
            key = None if topic.endswith(".dlq") else json.loads(value)["subject"].encode()
            producer.send(
                prefix + topic,
                value,
                key=key,
                headers=list(headers.items()),
            )
        producer.flush()
    finally:
        producer.close()


def applied(engine: Engine) -> int:
    with Session(engine) as session:
        events = session.exec(
            select(func.count()).where(col(ProcessedEvent.consumer) == project.CONSUMER)
        ).one()
        letters = session.exec(select(func.count()).select_from(ReportDeadLetter)).one()
    return int(events) + int(letters)


async def test_consumer_and_rebuild_give_byte_identical_exports(
    broker: str, engine: Engine, tmp_path: Path
) -> None:
    from workers import reporting as reporting_worker

    ctx = make_context()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    admin = KafkaAdminClient(bootstrap_servers=broker, client_id="test-reporting")
    try:
        admin.create_topics(
            [NewTopic(prefix + t, num_partitions=3, replication_factor=1) for t in project.TOPICS]
        )
    finally:
        admin.close()
    records = cohort()
    publish(broker, prefix, records)
    expected = len({r[1] for r in records if not r[0].endswith(".dlq")}) + 3  # 3 dead letters

    settings = Settings(data_dir=tmp_path, kafka_bootstrap=broker)
    consumer = reporting_worker.build(
        settings,
        engine,
        group_id=f"reporting-{uuid.uuid4().hex[:6]}",
        topics=tuple(prefix + t for t in project.TOPICS),
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while applied(engine) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert applied(engine) == expected
        live = _exports(engine, ctx)
    finally:
        await consumer.stop()

    # A redelivery (a producer retry, a replay) puts the same events on the topics again;
    # a rebuild without --fresh reads them all and applies none.
    publish(broker, prefix, records[:10])
    assert rebuild.rebuild(broker, engine, topic_prefix=prefix) == 0
    assert _exports(engine, ctx) == live
    assert rebuild.rebuild(broker, engine, fresh=True, topic_prefix=prefix) == expected
    again = _exports(engine, ctx)
    assert [k for k in live if again[k] != live[k]] == []


async def test_a_rebuild_beside_the_live_consumer_equals_a_clean_rebuild(
    broker: str, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``linkway rebuild reporting --fresh`` started while the consumer is working through
    a backlog: the consumer holds off while the rebuild runs (reporting.lease), then
    carries on; nothing collides, and the exports equal a clean rebuild's."""
    from workers import reporting as reporting_worker

    ctx = make_context()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    admin = KafkaAdminClient(bootstrap_servers=broker, client_id="test-reporting-lease")
    try:
        admin.create_topics(
            [NewTopic(prefix + t, num_partitions=3, replication_factor=1) for t in project.TOPICS]
        )
    finally:
        admin.close()
    records = [r for r in synthetic.year(30, ctx.profile, seed=11) if r[0] in project.TOPICS]
    publish(broker, prefix, records)
    expected = len({json.loads(value)["id"] for _, value, _ in records})
    settings = Settings(data_dir=tmp_path, kafka_bootstrap=broker)
    consumer = reporting_worker.build(
        settings,
        engine,
        group_id=f"reporting-{uuid.uuid4().hex[:6]}",
        topics=tuple(prefix + t for t in project.TOPICS),
        backoff=Backoff(initial=0.05, maximum=0.3),
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while applied(engine) < 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert 50 <= applied(engine) < expected, "the consumer had no backlog left"
        await asyncio.to_thread(rebuild.rebuild, broker, engine, fresh=True, topic_prefix=prefix)
        while applied(engine) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert applied(engine) == expected
    finally:
        await consumer.stop()
    clean = scratch()
    rebuild.apply_records(clean, records)
    assert _exports(engine, ctx) == _exports(clean, ctx)
    clean.dispose()
    assert "RebuildRunning" in caplog.text  # it did hold off: the two overlapped
    assert "IntegrityError" not in caplog.text  # and never wrote the same row as the rebuild


def _exports(engine: Engine, ctx) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return exports(session, ctx)
