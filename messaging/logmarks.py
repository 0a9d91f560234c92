"""What the broker must still hold: for each partition the relay has published to, the
lowest offset acknowledged in its last marked batch there. The relay's check of the
broker's log against the outbox reads these marks.

Why a mark and not "the broker's log end is past the last offset acknowledged": a
partition's reported end is the true end on Apache Kafka, but the embedded broker (Tansu)
reports one past the first offset of its last record batch. After a batch of five
records at offsets 10 to 14 Tansu says the log ends at 11, which looks like a lost tail to
any check against 14, and used to make every relay that started or took over send the
whole history again. Every broker's end is past the *first* offset of the last batch it
acknowledged, so a partition has lost history exactly when its end is not past that
offset (a broker that restarted empty reports 0). Records sent after the last mark (a
relay killed between acknowledgement and marking) only move the end further on.

The marks are written in the transaction that marks the batch's rows published, so they
never claim more than the outbox does; a topic whose history is sent again has its marks
forgotten first, then written afresh from the resend.

A topic published to before the marks existed (a database migrated from before
revision 0013) has none: it counts as lost only if the broker holds nothing at all in
it, until the relay's next batch to it writes its marks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import DateTime, delete
from sqlmodel import Field, Session, SQLModel, col, select

# topic -> partition -> end offset, as the broker reports it
LogEnds = dict[str, dict[int, int]]


class LogMarkRow(SQLModel, table=True):
    """The lowest offset acknowledged on one partition in the last batch marked there."""

    __tablename__ = "relay_log_marks"

    topic: str = Field(primary_key=True, max_length=249)  # Kafka's longest topic name
    partition: int = Field(primary_key=True)
    first_offset: int
    marked_at: datetime = Field(sa_type=DateTime(timezone=True))


def first_offsets(acks: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """The lowest offset per (topic, partition) among ``(topic, partition, offset)``."""
    lowest: dict[tuple[str, int], int] = {}
    for topic, partition, offset in acks:
        key = (topic, partition)
        if key not in lowest or offset < lowest[key]:
            lowest[key] = offset
    return lowest


def record(session: Session, acks: Iterable[tuple[str, int, int]]) -> None:
    """Mark a batch's acknowledgements, in the caller's transaction."""
    now = datetime.now(UTC)
    for (topic, partition), offset in first_offsets(acks).items():
        row = session.get(LogMarkRow, (topic, partition))
        if row is None:
            session.add(
                LogMarkRow(topic=topic, partition=partition, first_offset=offset, marked_at=now)
            )
        else:
            row.first_offset, row.marked_at = offset, now
            session.add(row)


def forget(session: Session, topic: str) -> None:
    """Before a topic's history is sent again: its old offsets mean nothing on the new log."""
    session.execute(delete(LogMarkRow).where(col(LogMarkRow.topic) == topic))


def marks(session: Session) -> dict[tuple[str, int], int]:
    rows = session.exec(select(LogMarkRow.topic, LogMarkRow.partition, LogMarkRow.first_offset))
    return {(topic, partition): offset for topic, partition, offset in rows}


def lost_topics(
    published: Iterable[str], marked: dict[tuple[str, int], int], ends: LogEnds
) -> set[str]:
    """The topics the broker has lost history of: a marked partition whose end is not past
    its mark, or a published topic with no marks of which the broker holds nothing."""
    lost = {
        topic
        for (topic, partition), offset in marked.items()
        if ends.get(topic, {}).get(partition, 0) <= offset
    }
    with_marks = {topic for topic, _ in marked}
    lost |= {
        topic
        for topic in published
        if topic not in with_marks and sum(ends.get(topic, {}).values()) == 0
    }
    return lost
