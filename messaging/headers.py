"""What a consumer reads from a Kafka record's headers (``messaging.consumer``).

- Only UTF-8: faststream decodes every header as UTF-8, so a partner's binary header
  would fail before the handler runs and the record would be skipped with no dead
  letter. The parsers here drop such headers first.
- The trace its producer put there: a record handled in a batch gets a consumer span of
  its own that continues that trace (``record_span``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import propagate, trace


async def parse_tolerating_headers(record: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    return await original(_utf8_headers_only(record))


async def parse_batch_tolerating_headers(
    records: Any, original: Callable[[Any], Awaitable[Any]]
) -> Any:
    """The same for a batch."""
    return await original(tuple(_utf8_headers_only(r) for r in records))


def _utf8_headers_only(record: Any) -> Any:
    headers = [(k, v) for k, v in record.headers if _is_utf8(v)]
    if len(headers) != len(record.headers):
        record = dataclasses.replace(record, headers=headers)
    return record


def _is_utf8(value: bytes | None) -> bool:
    try:
        (value or b"").decode()
    except UnicodeDecodeError:
        return False
    return True


_tracer = trace.get_tracer("linkway.messaging")


def record_span(topic: str, partition: int, offset: int, headers: dict[str, bytes]) -> Any:
    """A batch arrives under one span of the telemetry middleware's; each record is handled
    in its own consumer span that continues the trace its producer put in its headers, as a
    record consumed alone is."""
    carrier = {k: v.decode("utf-8", "replace") for k, v in headers.items()}
    return _tracer.start_as_current_span(
        f"{topic} process",
        context=propagate.extract(carrier),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.kafka.partition": partition,
            "messaging.kafka.offset": offset,
        },
    )
