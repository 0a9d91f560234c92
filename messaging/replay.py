"""Replay, for operators: publish history again, and rebuild a read model from a topic.

- ``republish`` sends outbox rows again, in outbox order, for a referral, a time window
  and/or a topic: for a partner that lost data, or a topic that lost its messages. The
  events are the same, byte for byte (same ids, so consumers that deduplicate apply none
  twice), with one more header, ``linkway-replay: true``. ``published_at`` is left as it
  is: replay is not the relay, and an unpublished row stays the relay's to publish.
- ``rebuild_referrals`` is the consumer's side: it reads ``linkway.referrals`` from the
  start and folds it into the ``referral_timeline`` table (``messaging.timeline``),
  idempotent by event id, so running it again, or over a replayed topic, changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from events import topics
from events.envelope import CloudEvent
from infra.db import transaction
from messaging import reader, timeline
from messaging.consumer import ProcessedEvent, is_processed, record_processed
from messaging.outbox import OutboxRow
from messaging.relay import REPLAY_HEADER, SEND_TIMEOUT_SECONDS, check_producer, traced_send

log = logging.getLogger("linkway.replay")

REBUILD_CONSUMER = "rebuild-referrals"
CHUNK = 500  # rows read, sent and acknowledged at a time


class ReplayFailed(RuntimeError):
    """The broker did not acknowledge a replayed event; running the replay again is safe."""


def republish(
    engine: Engine,
    producer: KafkaProducer,
    *,
    referral_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    topic: str | None = None,
) -> int:
    """Send the published outbox rows that match every given filter again, in outbox order;
    returns how many the broker acknowledged.

    The window is on the time Linkway recorded the event, ``since`` inclusive and
    ``until`` exclusive; a time without a zone is taken as UTC. With no filter at all it
    refuses: the whole history is seldom what a partner lost, so ask for it by topic.
    """
    if referral_id is None and since is None and until is None and topic is None:
        raise ValueError("name a referral, a time window or a topic to replay")
    check_producer(producer)  # a replay is held to the relay's delivery settings
    sent = 0
    for rows in _history(engine, referral_id, _utc(since), _utc(until), topic):
        futures = [(row, _send(producer, row)) for row in rows]
        for row, future in futures:
            try:
                future.get(timeout=SEND_TIMEOUT_SECONDS)
            except Exception as exc:
                raise ReplayFailed(
                    f"replayed {sent} events; event {row.event_id} (outbox seq {row.seq}) was "
                    f"not acknowledged ({type(exc).__name__}): run the replay again"
                ) from exc
            sent += 1
    log.info("replayed %d events", sent)
    return sent


def _send(producer: KafkaProducer, row: OutboxRow) -> FutureRecordMetadata:
    return traced_send(producer, row, [REPLAY_HEADER])


def _history(
    engine: Engine,
    referral_id: str | None,
    since: datetime | None,
    until: datetime | None,
    topic: str | None,
) -> Iterator[list[OutboxRow]]:
    stmt = select(OutboxRow).where(col(OutboxRow.published_at).is_not(None))
    if referral_id is not None:
        stmt = stmt.where(OutboxRow.key == referral_id)
    if since is not None:
        stmt = stmt.where(col(OutboxRow.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(OutboxRow.created_at) < until)
    if topic is not None:
        stmt = stmt.where(OutboxRow.topic == topic)
    after = 0
    while True:
        with Session(engine) as session:
            chunk = list(
                session.exec(
                    stmt.where(col(OutboxRow.seq) > after).order_by(col(OutboxRow.seq)).limit(CHUNK)
                )
            )
        if not chunk:
            return
        yield chunk
        after = chunk[-1].seq or after


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def rebuild_referrals(
    bootstrap: str, engine: Engine, *, topic: str = topics.REFERRALS, fresh: bool = False
) -> int:
    """Fold ``topic`` from its first message into ``referral_timeline``; returns how many
    events were applied (events already applied are skipped by id).

    ``fresh`` empties the table and this consumer's processed-event records first. The
    topic keeps a week of events: to rebuild from further back, replay the history onto it
    first (``republish(..., topic=..., since=...)``).
    """
    SQLModel.metadata.create_all(
        engine,
        tables=[SQLModel.metadata.tables[t] for t in ("referral_timeline", "processed_events")],
    )
    if fresh:
        with transaction(engine) as session:
            session.execute(delete(timeline.TimelineRow))
            session.execute(
                delete(ProcessedEvent).where(col(ProcessedEvent.consumer) == REBUILD_CONSUMER)
            )
    applied = skipped = 0
    batch: list[CloudEvent] = []
    for _, value, _ in reader.read(bootstrap, topic):
        try:
            batch.append(CloudEvent.model_validate(json.loads(value)))
        except (ValueError, ValidationError):
            skipped += 1  # not an event this reader understands; a tolerant reader moves on
            continue
        if len(batch) >= CHUNK:
            applied += _apply(engine, batch)
            batch = []
    applied += _apply(engine, batch)
    log.info(
        "rebuilt referral_timeline from %s: %d events applied, %d unreadable",
        topic,
        applied,
        skipped,
    )
    return applied


def _apply(engine: Engine, events: list[CloudEvent]) -> int:
    """Apply a batch in one transaction: each effect with its processed-event record."""
    seen: set[str] = set()  # the batch's own duplicates: its records are not flushed yet
    rows: dict[str, timeline.TimelineRow] = {}
    with transaction(engine) as session:
        for event in events:
            if event.id in seen or is_processed(session, REBUILD_CONSUMER, event.id):
                continue
            seen.add(event.id)
            row = rows.get(event.subject) or session.get(timeline.TimelineRow, event.subject)
            rows[event.subject] = timeline.apply(row, event)
            session.add(rows[event.subject])
            record_processed(session, REBUILD_CONSUMER, event.id)
    return len(seen)
