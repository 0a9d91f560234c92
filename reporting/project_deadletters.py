"""Folding dead letters into the reporting read model (``ReportDeadLetter``): one row per
record a Linkway consumer refused, keyed by where it was read (topic, partition, offset)
and by whom, so a dead letter redelivered counts once. Called by ``reporting.project.apply``
for every dead-letter topic.

The row keeps only what data quality is reported by: the consumer, the reason's category,
when, and the provider that sent it as far as its bytes say. Never the record itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlmodel import Session

from events import topics
from events.envelope import CloudEvent
from messaging.deadletters import (
    CONSUMER_HEADER,
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    TIME_HEADER,
    TOPIC_HEADER,
    reason_category,
)
from reporting.rows import get, month_of, put, utc
from reporting.tables import ReportDeadLetter

PROVIDER_SOURCE = "urn:linkway:provider:"


def fold(session: Session, topic: str, value: bytes, headers: dict[str, bytes]) -> bool:
    def header(name: str) -> str:
        return (headers.get(name) or b"").decode(errors="replace")

    original = header(TOPIC_HEADER) or topic.removesuffix(topics.DEAD_LETTER_SUFFIX)
    try:
        partition, offset = int(header(PARTITION_HEADER)), int(header(OFFSET_HEADER))
    except ValueError:
        return False  # not a dead letter Linkway wrote
    consumer = header(CONSUMER_HEADER)[:64] or "unknown"
    key = (original[:120], partition, offset, consumer)
    if get(session, ReportDeadLetter, key) is not None:
        return False
    try:
        at = utc(datetime.fromisoformat(header(TIME_HEADER)))
    except ValueError:
        at = datetime(1970, 1, 1, tzinfo=UTC)
    put(
        session,
        ReportDeadLetter,
        key,
        ReportDeadLetter(
            topic=key[0],
            partition=partition,
            offset=offset,
            consumer=consumer,
            partner_id=sender(value),
            reason=reason_category(header(REASON_HEADER)),
            at=at,
            month=month_of(at),
        ),
    )
    return True


def sender(value: bytes) -> str:
    """The provider a dead letter came from, as far as its bytes say: the data's
    ``provider_id`` or the envelope's provider source; else ``unknown``."""
    try:
        envelope = CloudEvent.model_validate(json.loads(value))
    except (ValueError, ValidationError):
        return "unknown"
    named = envelope.data.get("provider_id")
    if isinstance(named, str) and 0 < len(named) <= 64 and named.replace("-", "").isalnum():
        return named
    if envelope.source.startswith(PROVIDER_SOURCE):
        found = envelope.source.removeprefix(PROVIDER_SOURCE)
        if 0 < len(found) <= 64 and found.replace("-", "").isalnum():
            return found
    return "unknown"
