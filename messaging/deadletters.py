"""Dead letters: a record a consumer will never accept goes, byte for byte and with its
key, to ``<topic>.dlq``, with why and where it came from in headers (the published
contract names them: docs/events.md), and counts in the ``linkway.dead_letters`` metric
by its reason's category.

Reasons are recorded verbatim, so they must name fields and ids, never personal data
values (``catalogue.parse`` already words its reasons that way).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from faststream.kafka import KafkaBroker
from opentelemetry import metrics

from events.topics import dead_letter_topic

if TYPE_CHECKING:
    from messaging.consumer import Inbound

MAX_REASON_CHARS = 500
# Dead-letter headers; the reason and topic names are also in the published contract.
REASON_HEADER = "linkway-dlq-reason"
TOPIC_HEADER = "linkway-dlq-topic"
PARTITION_HEADER = "linkway-dlq-partition"
OFFSET_HEADER = "linkway-dlq-offset"
CONSUMER_HEADER = "linkway-dlq-consumer"
TIME_HEADER = "linkway-dlq-time"


# A dead letter's reason names fields and ids: too many values for a metric attribute.
# The metric carries its category, from the reason's opening words (the wording is
# catalogue.parse's and the consumers'); anything unrecognised counts as "other".
REASON_CATEGORIES = (
    ("unknown event type", "unknown_type"),
    ("event is ", "too_large"),
    ("not valid json", "not_json"),
    ("an event must be", "not_an_object"),
    ("bad envelope", "bad_envelope"),
    ("event type ", "wrong_topic"),
    ("bad data", "bad_data"),
    ("unauthorised", "unauthorised"),
    ("unknown handoff", "unknown_handoff"),
    ("implausible date", "implausible_date"),
    ("malformed", "malformed_row"),
    ("unmatched", "unmatched"),
)
_meter = metrics.get_meter("linkway.messaging")
DEAD_LETTERS = _meter.create_counter(
    "linkway.dead_letters",
    unit="{message}",
    description="Messages dead-lettered, by the topic they came from and the reason's category",
)


def reason_category(reason: str) -> str:
    text = reason.lower()
    return next((code for opening, code in REASON_CATEGORIES if text.startswith(opening)), "other")


class DeadLetters:
    """Publishes a rejected record's original bytes and key to ``<topic>.dlq``."""

    def __init__(self, broker: KafkaBroker, consumer: str) -> None:
        self.broker = broker
        self.consumer = consumer

    async def publish(self, message: Inbound, reason: str) -> None:
        headers = {
            REASON_HEADER: reason[:MAX_REASON_CHARS],
            TOPIC_HEADER: message.topic,
            PARTITION_HEADER: str(message.partition),
            OFFSET_HEADER: str(message.offset),
            CONSUMER_HEADER: self.consumer,
            TIME_HEADER: datetime.now(UTC).isoformat(),
        }
        await self.broker.publish(
            message.value, dead_letter_topic(message.topic), key=message.key, headers=headers
        )
        DEAD_LETTERS.add(1, {"topic": message.topic, "reason": reason_category(reason)})
