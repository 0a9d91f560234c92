"""Replay on the real broker: ``republish`` sends exactly the chosen outbox rows again, with
their ids and bytes unchanged and a replay header, and leaves ``published_at`` alone;
``rebuild_referrals`` applies each event once however often it is on the topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from events.examples import example
from infra.settings import Settings
from messaging import outbox, reader
from messaging.outbox import OutboxRow
from messaging.relay import OutboxRelay, make_producer
from messaging.replay import rebuild_referrals, republish
from messaging.timeline import TimelineRow

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STEPS = [  # (type, stage) of each referral's events, in order
    ("linkway.referral.received.v1", "triage"),
    ("linkway.referral.accepted.v1", "contacting"),
    ("linkway.referral.link_worker_assigned.v1", "contacting"),
]


@dataclass
class History:
    topic: str
    referrals: list[str]
    rows: list[OutboxRow]  # in outbox order; referrals interleaved, a minute apart
    producer: KafkaProducer

    def ids(self, rows: list[OutboxRow] | None = None) -> list[str]:
        return [r.event_id for r in (self.rows if rows is None else rows)]


@pytest.fixture
def history(engine: Engine, broker: str) -> Iterator[History]:
    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=broker, client_id="test-replay")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    referrals = [f"r-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    with Session(engine) as session:
        for step, (type_, stage) in enumerate(STEPS):
            for n, referral_id in enumerate(referrals):
                at = T0 + timedelta(minutes=step * len(referrals) + n)
                session.add(row_for(type_, stage, referral_id, at, topic))
        session.commit()
    settings = Settings(kafka_bootstrap=broker, relay_poll_seconds=0.05)
    relay = OutboxRelay(engine, make_producer(settings), settings)
    while relay.publish_pending():
        pass
    assert relay.producer is not None
    relay.producer.close(timeout=5)
    producer = make_producer(settings)
    try:
        yield History(topic, referrals, rows_of(engine), producer)
    finally:
        producer.close(timeout=5)


def row_for(type_: str, stage: str, referral_id: str, at: datetime, topic: str) -> OutboxRow:
    data = example(type_).model_copy(
        update={"referral_id": referral_id, "stage": stage, "occurred_at": at}
    )
    event = outbox.to_envelope(data, referral_id, "urn:linkway:test", str(uuid.uuid4()), at)
    return OutboxRow(
        event_id=event.id,
        topic=topic,
        key=referral_id,
        type=type_,
        payload=event.model_dump_json(),
        created_at=at,
    )


def rows_of(engine: Engine) -> list[OutboxRow]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxRow).order_by(col(OutboxRow.seq))))


def replayed(broker: str, topic: str) -> list[tuple[str, bytes]]:
    """(event id, value) of every replayed message on the topic, per partition in order."""
    return [
        (json.loads(value)["id"], value)
        for _, value, headers in reader.read(broker, topic)
        if headers.get("linkway-replay") == b"true"
    ]


def test_republish_for_one_referral_resends_exactly_its_events_with_the_same_ids(
    engine, broker, history
):
    chosen = history.referrals[1]
    mine = [r for r in history.rows if r.key == chosen]

    assert republish(engine, history.producer, referral_id=chosen) == len(mine) == 3

    again = replayed(broker, history.topic)
    assert [event_id for event_id, _ in again] == history.ids(mine)  # one key: one partition
    assert [value for _, value in again] == [r.payload.encode() for r in mine]
    assert len(list(reader.read(broker, history.topic))) == len(history.rows) + len(mine)
    assert [r.published_at for r in rows_of(engine)] == [r.published_at for r in history.rows]


def test_republish_for_a_time_window_resends_exactly_the_rows_recorded_in_it(
    engine, broker, history
):
    since, until = T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)  # minutes 2, 3 and 4
    expected = [r for r in history.rows if since <= r.created_at.replace(tzinfo=UTC) < until]
    # A row in the window that the relay has not published yet is the relay's to send.
    with Session(engine) as session:
        session.add(row_for(*STEPS[0], "r-unpublished", since, history.topic))
        session.commit()

    assert republish(engine, history.producer, since=since, until=until) == 3

    again = replayed(broker, history.topic)
    assert sorted(event_id for event_id, _ in again) == sorted(history.ids(expected))
    unpublished = [r for r in rows_of(engine) if r.published_at is None]
    assert [r.key for r in unpublished] == ["r-unpublished"]


def test_republish_with_no_filter_is_refused(engine, history):
    with pytest.raises(ValueError, match="name a referral, a time window or a topic"):
        republish(engine, history.producer)


def test_a_rebuild_applies_each_event_once_and_rebuilding_again_changes_nothing(
    engine, broker, history
):
    # Every event is on the topic once from the relay, and some twice more from replays.
    republish(engine, history.producer, referral_id=history.referrals[0])
    republish(engine, history.producer, topic=history.topic)

    assert rebuild_referrals(broker, engine, topic=history.topic) == len(history.rows)
    first = timeline(engine)
    assert rebuild_referrals(broker, engine, topic=history.topic) == 0
    assert timeline(engine) == first
    assert rebuild_referrals(broker, engine, topic=history.topic, fresh=True) == len(history.rows)
    assert timeline(engine) == first

    last = {r.key: r for r in history.rows}  # each referral's last row
    assert {referral_id: row["event_count"] for referral_id, row in first.items()} == {
        referral_id: len(STEPS) for referral_id in history.referrals
    }
    for referral_id, row in first.items():
        assert row["stage"] == "contacting"
        assert row["last_event_id"] == last[referral_id].event_id
        assert row["last_event_type"] == "linkway.referral.link_worker_assigned.v1"
        assert row["partner_id"] is not None and row["link_worker_id"] is not None


def timeline(engine: Engine) -> dict[str, dict]:
    with Session(engine) as session:
        return {r.referral_id: r.model_dump() for r in session.exec(select(TimelineRow))}
