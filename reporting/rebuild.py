"""``linkway rebuild reporting``: the reporting read models folded again from the topics.

It reads every topic the reporting consumer reads from its first message and applies it
through ``reporting.project.apply`` under the consumer's own name, so events already
applied (by the consumer or an earlier rebuild) are skipped by id. While it runs it holds
the rebuild's lease (``reporting.lease``): a live reporting consumer applies nothing
until it is done, then carries on from where it was, so the two never write the same
rows at once. ``fresh`` empties the read models and the
consumer's processed-event records first, so every event applies again: the exports
afterwards are byte-for-byte what they were if the topics still hold every event (they
keep a week: to rebuild from further back, replay the history onto them first with
``linkway replay --topic``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from infra.db import transaction
from messaging import reader
from messaging.consumer import ProcessedEvent
from messaging.lease import Lease, LeaseRow
from reporting import lease, project, rows
from reporting.tables import TABLE_NAMES, TABLES

log = logging.getLogger("linkway.reporting")

CHUNK = 500  # records applied per transaction

Record = tuple[str, bytes, dict[str, bytes]]


def ensure_tables(engine: Engine) -> None:
    SQLModel.metadata.create_all(
        engine,
        tables=[
            SQLModel.metadata.tables[t]
            for t in (*TABLE_NAMES, "processed_events", str(LeaseRow.__tablename__))
        ],
    )


def clear(engine: Engine, held: Lease | None = None) -> None:
    """Empty the read models and forget which events the consumer applied."""
    with transaction(engine) as session:
        _fence(session, held)
        for table in TABLES:
            session.execute(delete(table))
        session.execute(
            delete(ProcessedEvent).where(col(ProcessedEvent.consumer) == project.CONSUMER)
        )


def apply_records(engine: Engine, records: Iterable[Record], held: Lease | None = None) -> int:
    """Apply records in chunks, one transaction each (renewing ``held``, the rebuild's
    lease, in each); returns how many were applied."""
    applied = 0
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= CHUNK:
            applied += _apply(engine, batch, held)
            batch = []
    return applied + _apply(engine, batch, held)


def _fence(session: Session, held: Lease | None) -> None:
    if held is not None and not held.fence(session):
        raise lease.RebuildRefused(
            "the rebuild lost its lease (paused past it?): nothing more was applied; run it again"
        )


def _apply(engine: Engine, batch: list[Record], held: Lease | None = None) -> int:
    applied = 0
    with transaction(engine) as session:
        _fence(session, held)
        # Rows and event ids this batch added are found by key in the session's own
        # cache (reporting.project), so nothing needs flushing until the commit.
        session.autoflush = False
        rows.preload(session, [value for _, value, _ in batch], project.CONSUMER)
        for topic, value, headers in batch:
            applied += project.apply(session, topic, value, headers)
    return applied


def read_topics(bootstrap: str, names: Iterable[str] = project.TOPICS) -> Iterator[Record]:
    """Every record of the topics, each partition in order (a topic that does not exist
    yet has nothing to rebuild from)."""
    for topic, _, value, headers in reader.read_many(bootstrap, list(names)):
        yield topic, value, headers


def rebuild(
    bootstrap: str,
    engine: Engine,
    *,
    fresh: bool = False,
    topic_prefix: str = "",
) -> int:
    """Fold every reporting topic from the start into the read models; returns how many
    records were applied. ``topic_prefix`` reads prefixed copies of the topics (tests).
    Raises ``RebuildRefused`` while another rebuild runs."""
    ensure_tables(engine)
    held = lease.lease(engine)
    if not held.acquire():
        state = held.state()
        holder = f" ({state.holder}, for {state.expires_in:.0f}s more)" if state else ""
        raise lease.RebuildRefused(f"another reporting rebuild is running{holder}")
    try:
        if fresh:
            clear(engine, held)
        names = [topic_prefix + t for t in project.TOPICS]
        applied = apply_records(engine, read_topics(bootstrap, names), held)
    finally:
        held.release()
    log.info("rebuilt the reporting read models: %d records applied", applied)
    return applied
