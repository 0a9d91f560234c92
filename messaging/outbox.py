"""The transactional outbox: events are written as rows in the same database transaction
as the state change that raised them, and the relay publishes them afterwards.

A row is never deleted; ``published_at`` is set only after the broker acknowledged it.
The rows are also the history that ``linkway replay`` re-publishes from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from opentelemetry import propagate
from sqlalchemy import Index, Row, func, sql
from sqlmodel import Field, Session, SQLModel, col, select

from events.catalogue import EventData
from events.envelope import CloudEvent, new_event


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    topic: str = Field(max_length=200)
    key: str = Field(index=True, max_length=64)
    type: str = Field(max_length=120)
    payload: str
    headers: str = "{}"
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC), index=True)
    published_at: datetime | None = None


def to_envelope(
    data: EventData, subject: str, source: str, event_id: str, at: datetime
) -> CloudEvent:
    return new_event(
        data.TYPE, subject, data.model_dump(mode="json"), source, event_id=event_id, time=at
    )


def add(session: Session, envelope: CloudEvent, topic: str) -> bool:
    """Stage one event in the caller's transaction. Idempotent by event id: returns False
    when the event is already in the outbox (an activity retried after its commit)."""
    existing = session.exec(select(OutboxRow.seq).where(OutboxRow.event_id == envelope.id)).first()
    if existing is not None:
        return False
    stage(session, envelope, topic, trace_headers())
    return True


def trace_headers() -> str:
    """The current trace context as the JSON of a row's ``headers``: it travels to
    consumers in Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier)


def stage(session: Session, envelope: CloudEvent, topic: str, headers: str) -> None:
    """Add the event's row to the caller's transaction, without looking for it first: for
    a caller that already knows the event id is not in the outbox (``add`` looks)."""
    session.add(_row(envelope, topic, headers))


def stage_all(session: Session, events: list[tuple[CloudEvent, str]], headers: str) -> None:
    """Insert the events' rows now, in one statement and in this order (their ``seq``
    follows it), without looking for them first or loading them as objects: for a caller
    that already knows none is in the outbox and has done its reads (this writes)."""
    if events:
        session.execute(
            sql.insert(OutboxRow),
            [
                _row(envelope, topic, headers).model_dump(exclude={"seq"})
                for envelope, topic in events
            ],
        )


def _row(envelope: CloudEvent, topic: str, headers: str) -> OutboxRow:
    return OutboxRow(
        event_id=envelope.id,
        topic=topic,
        key=envelope.subject,
        type=envelope.type,
        payload=envelope.model_dump_json(),
        headers=headers,
    )


def unpublished(session: Session, limit: int) -> list[OutboxRow]:
    stmt = (
        select(OutboxRow)
        .where(col(OutboxRow.published_at).is_(None))
        .order_by(col(OutboxRow.seq))
        .limit(limit)
    )
    return list(session.exec(stmt))


# What the relay sends of a row, selected as plain rows (no ORM object per row).
_SENT = tuple(
    col(c)
    for c in (OutboxRow.seq, OutboxRow.topic, OutboxRow.key, OutboxRow.payload, OutboxRow.headers)
)


def pending(session: Session, limit: int) -> Sequence[Row[tuple[int, str, str, str, str]]]:
    """The oldest ``limit`` unpublished rows, in commit order, as plain rows with what a
    send needs (``seq``, ``topic``, ``key``, ``payload``, ``headers``)."""
    stmt = (
        sql.select(*_SENT)
        .where(col(OutboxRow.published_at).is_(None))
        .order_by(col(OutboxRow.seq))
        .limit(limit)
    )
    return session.execute(stmt).all()


def published(
    session: Session, topic: str, after: int, limit: int
) -> Sequence[Row[tuple[int, str, str, str, str]]]:
    """Up to ``limit`` published rows of ``topic`` after ``seq`` ``after``, in commit order,
    as ``pending`` gives them: the history the relay sends again to a broker that lost it."""
    stmt = (
        sql.select(*_SENT)
        .where(
            col(OutboxRow.topic) == topic,
            col(OutboxRow.published_at).is_not(None),
            col(OutboxRow.seq) > after,
        )
        .order_by(col(OutboxRow.seq))
        .limit(limit)
    )
    return session.execute(stmt).all()


def backlog(session: Session) -> tuple[int, datetime | None]:
    """How many rows wait for the relay, and when the oldest of them was written: the
    relay is keeping up while the first stays near zero and the second recent."""
    count, oldest = session.exec(
        select(func.count(), func.min(OutboxRow.created_at)).where(
            col(OutboxRow.published_at).is_(None)
        )
    ).one()
    return int(count), oldest
