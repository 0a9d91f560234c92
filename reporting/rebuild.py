"""``linkway rebuild reporting``: the reporting read models folded again from the topics.

It reads every topic the reporting consumer reads from its first message and applies it
through ``reporting.project.apply`` under the consumer's own name, so events already
applied (by the consumer or an earlier rebuild) are skipped by id and a rebuild running
beside the live consumer applies nothing twice. ``fresh`` empties the read models and the
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
from sqlmodel import SQLModel, col

from infra.db import transaction
from messaging import reader
from messaging.consumer import ProcessedEvent
from reporting import project
from reporting.tables import TABLE_NAMES, TABLES

log = logging.getLogger("linkway.reporting")

CHUNK = 500  # records applied per transaction

Record = tuple[str, bytes, dict[str, bytes]]


def ensure_tables(engine: Engine) -> None:
    SQLModel.metadata.create_all(
        engine,
        tables=[SQLModel.metadata.tables[t] for t in (*TABLE_NAMES, "processed_events")],
    )


def clear(engine: Engine) -> None:
    """Empty the read models and forget which events the consumer applied."""
    with transaction(engine) as session:
        for table in TABLES:
            session.execute(delete(table))
        session.execute(
            delete(ProcessedEvent).where(col(ProcessedEvent.consumer) == project.CONSUMER)
        )


def apply_records(engine: Engine, records: Iterable[Record]) -> int:
    """Apply records in chunks, one transaction each; returns how many were applied."""
    applied = 0
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= CHUNK:
            applied += _apply(engine, batch)
            batch = []
    return applied + _apply(engine, batch)


def _apply(engine: Engine, batch: list[Record]) -> int:
    applied = 0
    with transaction(engine) as session:
        # Rows and event ids this batch added are found by key in the session's own
        # cache (reporting.project), so nothing needs flushing until the commit.
        session.autoflush = False
        project.preload(session, [value for _, value, _ in batch])
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
    records were applied. ``topic_prefix`` reads prefixed copies of the topics (tests)."""
    ensure_tables(engine)
    if fresh:
        clear(engine)
    names = [topic_prefix + t for t in project.TOPICS]
    applied = apply_records(engine, read_topics(bootstrap, names))
    log.info("rebuilt the reporting read models: %d records applied", applied)
    return applied
