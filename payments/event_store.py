"""The payment engine's event store: every event it consumed, as received, in consumed
order (the outcome facts and the re-entry facts that start an episode's exclusion
window). It is the evidence a claim links to and the input to reconciliation. Insert
only, like the ledger (``payments.guards`` makes the database refuse an update).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy import Index, func
from sqlmodel import Field, Session, SQLModel, col, select

from events.catalogue import EventData, model_for
from events.envelope import CloudEvent
from messaging.outbox import OutboxRow
from payments.columns import utc, utc_column


class OutcomeEventRow(SQLModel, table=True):
    __tablename__ = "outcome_events"
    __table_args__ = (Index("ix_outcome_events_episode", "referral_id", "episode"),)

    # Consumed order: rows are inserted under the ledger lock, so this is commit order.
    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    type: str = Field(max_length=120, index=True)
    referral_id: str = Field(max_length=64)
    episode: int
    occurred_at: datetime = Field(sa_type=utc_column())
    consumed_at: datetime = Field(sa_type=utc_column())
    envelope: str  # the CloudEvent as received (JSON)


def record_event(
    session: Session, envelope: CloudEvent, referral_id: str, episode: int, occurred_at: datetime
) -> bool:
    """Store a consumed event; False when its id is already stored (a redelivery)."""
    if has_event(session, envelope.id):
        return False
    session.add(
        OutcomeEventRow(
            event_id=envelope.id,
            type=envelope.type,
            referral_id=referral_id,
            episode=episode,
            occurred_at=utc(occurred_at),
            consumed_at=datetime.now(UTC),
            envelope=envelope.model_dump_json(),
        )
    )
    session.flush()
    return True


def has_event(session: Session, event_id: str) -> bool:
    found = session.exec(select(OutcomeEventRow.seq).where(OutcomeEventRow.event_id == event_id))
    return found.first() is not None


def consumed(
    session: Session, types: Collection[str] | None = None, ids: Collection[str] | None = None
) -> list[CloudEvent]:
    """Stored events in consumed order, optionally only these types or ids."""
    stmt = select(OutcomeEventRow.envelope).order_by(col(OutcomeEventRow.seq))
    if types is not None:
        stmt = stmt.where(col(OutcomeEventRow.type).in_(list(types)))
    if ids is not None:
        stmt = stmt.where(col(OutcomeEventRow.event_id).in_(list(ids)))
    return [CloudEvent.model_validate_json(raw) for raw in session.exec(stmt)]


def consumed_in_batches(
    session: Session, types: Collection[str], batch: int = 5_000
) -> Iterator[CloudEvent]:
    """``consumed`` as a stream, ``batch`` rows at a time, so reconciling a contract
    year of millions of events holds one batch of envelopes, not all of them."""
    stmt = (
        select(OutcomeEventRow.envelope)
        .where(col(OutcomeEventRow.type).in_(list(types)))
        .order_by(col(OutcomeEventRow.seq))
        .execution_options(yield_per=batch)
    )
    for raw in session.exec(stmt):
        yield CloudEvent.model_validate_json(raw)


@functools.cache
def _stored_envelope(type_: str) -> type[BaseModel]:
    """The stored envelope of one event type read as only what reconciliation uses, the id
    and the typed data: one parse of the JSON, in pydantic's core, straight to the event's
    model. The other attributes were checked when the event was consumed."""
    return create_model(
        "Stored" + model_for(type_).__name__,
        __config__=ConfigDict(extra="ignore", frozen=True),
        id=(str, ...),
        data=(model_for(type_), ...),
    )


def typed_in_batches(
    session: Session, types: Collection[str], batch: int = 5_000
) -> Iterator[tuple[str, EventData]]:
    """``consumed_in_batches`` as (event id, typed data), parsing each event once."""
    stmt = (
        select(OutcomeEventRow.type, OutcomeEventRow.envelope)
        .where(col(OutcomeEventRow.type).in_(list(types)))
        .order_by(col(OutcomeEventRow.seq))
    )
    # The session's connection, not the ORM: plain rows need none of its loading.
    rows = session.connection().execution_options(yield_per=batch).execute(stmt)
    parsers = {t: _stored_envelope(t).model_validate_json for t in types}
    for type_, raw in rows:
        stored: Any = parsers[type_](raw)
        yield stored.id, stored.data


def count_consumed(session: Session, types: Collection[str]) -> int:
    stmt = select(func.count()).where(col(OutcomeEventRow.type).in_(list(types)))
    return int(session.exec(stmt).one())


def episode_starts(
    session: Session, reentry_type: str, referral_id: str | None = None
) -> dict[tuple[str, int], datetime]:
    """When each re-entered episode began (of one referral, if given), from the stored
    re-entry events."""
    stmt = select(OutcomeEventRow).where(OutcomeEventRow.type == reentry_type)
    if referral_id is not None:
        stmt = stmt.where(OutcomeEventRow.referral_id == referral_id)
    return {(row.referral_id, row.episode): utc(row.occurred_at) for row in session.exec(stmt)}


def published(session: Session, ids: Collection[str]) -> list[OutboxRow]:
    """Linkway's own events with these ids (the pathway's evidence events)."""
    stmt = select(OutboxRow).where(col(OutboxRow.event_id).in_(list(ids)))
    return list(session.exec(stmt))
