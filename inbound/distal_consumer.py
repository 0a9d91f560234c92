"""The distal feed's Kafka door: one JSON record per row on ``linkway.distal.activity``,
applied by the same ``DistalFeed`` as a CSV import.

A record that is malformed or matches nobody goes to ``linkway.distal.activity.dlq``
**redacted**: the row without its NHS number, without the Kafka key (a sender may key by
NHS number), the reason in a header. So this consumer never raises ``EventRejected``,
whose dead letter would copy the original bytes; it publishes its own. Anything else
(the database down) raises and is retried, as for every Linkway consumer. Storing is
idempotent, so a record delivered again after a crash changes nothing and states what
the crash left unstated.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import date
from typing import Any

from faststream.kafka import KafkaBroker

from events import topics
from inbound.distal import DistalFeed
from infra.settings import Settings
from messaging.consumer import Inbound, make_broker, subscribe
from messaging.deadletters import DeadLetters

CONSUMER = "distal"
_KEPT = ("measure", "month", "count", "row_id", "extracted_at")
MAX_RECORD_BYTES = 4 * 1024


class DistalFeedConsumer:
    def __init__(self, feed: DistalFeed, dead_letters: DeadLetters) -> None:
        self.feed = feed
        self.dead_letters = dead_letters
        self.today: date | None = None  # tests pin the day; otherwise today

    async def __call__(self, inbound: Inbound) -> None:
        data, problem = _decode(inbound.value)
        if data is None:
            await self._dead_letter(inbound, None, f"malformed: {problem}")
            return
        result = await asyncio.to_thread(self.feed.apply, str(inbound), data, self.today)
        if result.status in ("malformed", "unmatched"):
            await self._dead_letter(inbound, data, f"{result.status}: {result.reason}")

    async def _dead_letter(self, inbound: Inbound, data: dict[str, Any] | None, why: str) -> None:
        # Only the feed's own non-personal columns: a sender's extra fields (a name, say)
        # are left out with the NHS number.
        kept = {k: v for k, v in (data or {}).items() if k in _KEPT}
        redacted = json.dumps(kept, default=str).encode() if data is not None else b""
        await self.dead_letters.publish(dataclasses.replace(inbound, key=None, value=redacted), why)


def _decode(raw: bytes | None) -> tuple[dict[str, Any] | None, str]:
    if not raw or len(raw) > MAX_RECORD_BYTES:
        return None, f"a record is one JSON object of at most {MAX_RECORD_BYTES} bytes"
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "not valid JSON"
    if not isinstance(body, dict):
        return None, "a record must be a JSON object"
    return body, ""


def build(
    settings: Settings, feed: DistalFeed, *, group_id: str | None = None
) -> tuple[KafkaBroker, DistalFeedConsumer]:
    broker = make_broker(settings, client_id=f"linkway-{CONSUMER}")
    handler = DistalFeedConsumer(feed, DeadLetters(broker, CONSUMER))
    subscribe(
        broker,
        name=CONSUMER,
        topics=[topics.DISTAL_ACTIVITY],
        handler=handler,
        group_id=group_id,
    )
    return broker, handler
