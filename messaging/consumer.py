"""Idempotent Kafka consumers: processed-event records, dead letters and the delivery loop.

Every Linkway consumer follows one contract:

- **Idempotent by event id.** A handler writes its effect and ``record_processed`` in one
  database transaction and asks ``is_processed`` first, so a redelivered event is applied
  once.
- **Offsets commit only after the effect commits.** Subscribers use faststream's
  ``AckPolicy.NACK_ON_ERROR`` with auto-commit off: the offset is committed (``ack``) only
  when the handler has returned, i.e. after its own commit.
- **Bad input is dead-lettered, never retried.** A handler raises ``EventRejected`` for a
  message it will never accept; the original bytes go to ``<topic>.dlq`` with the reason in
  a header, the offset is committed and the consumer moves on.
- **Anything else is retried, never dead-lettered.** Any other exception (Temporal or the
  database unavailable) commits nothing: after a back-off that grows while the failures go
  on, the partition is rewound to the message (``nack`` seeks back) and it comes again.

A consumer whose handler only needs per-referral order (``subscribe(..., concurrency=n)``)
takes each poll as a batch: the batch's records are grouped by an ordering key (the Kafka
key unless the consumer says otherwise), each key's records are handled one after the
other in offset order, and up to ``n`` keys are handled at once. The batch's offsets
commit only when every record in it has been handled or dead-lettered; if any record
failed, that key stops at it, the other keys finish, and after the back-off every
partition of the batch is rewound to the batch's first record. What the other records
already did is applied once again by event id (the processed-event records), so a
redelivered batch changes nothing twice.

A batch handler may also see the whole batch (``BatchHandler``): before any lane runs, the
runner calls its ``prepare`` with every record of the batch, and the ``BatchScope`` it
returns handles the batch's records in place of the handler, so it can read what they
need in one transaction instead of one per record. After the lanes finish, failed or
not, the runner awaits the scope's ``finish`` (e.g. to record what the batch applied in
one transaction) and only then commits the offsets. A ``prepare`` or ``finish`` that
raises fails the batch like a record would: back-off, then the batch is rewound and comes
again, so a ``finish`` must leave nothing half-done that a redelivery would apply twice.

Dead letters themselves (their topic, headers and metric) are ``messaging.deadletters``;
headers a partner sent that are not UTF-8 are dropped first (``messaging.headers``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.middlewares import AckPolicy
from sqlmodel import Field, Session, SQLModel, col, select

from events.catalogue import EventRejected
from infra.db import chunks
from infra.health import Health
from infra.settings import Settings
from messaging.deadletters import DeadLetters
from messaging.headers import (
    parse_batch_tolerating_headers,
    parse_tolerating_headers,
    record_span,
)

log = logging.getLogger("linkway.consumer")


class ProcessedEvent(SQLModel, table=True):
    """One row per event a consumer has applied; written in the effect's transaction."""

    __tablename__ = "processed_events"

    consumer: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def is_processed(session: Session, consumer: str, event_id: str) -> bool:
    return session.get(ProcessedEvent, (consumer, event_id)) is not None


def processed_among(session: Session, consumer: str, event_ids: Collection[str]) -> set[str]:
    """Which of ``event_ids`` the consumer has applied: ``is_processed`` for many at once."""
    found: set[str] = set()
    for chunk in chunks(event_ids):
        found.update(
            session.exec(
                select(ProcessedEvent.event_id)
                .where(ProcessedEvent.consumer == consumer)
                .where(col(ProcessedEvent.event_id).in_(chunk))
            )
        )
    return found


def record_processed(session: Session, consumer: str, event_id: str) -> None:
    """Stage the record in the caller's transaction; a concurrent duplicate fails its commit
    on the primary key, and that retry then finds the event processed."""
    session.add(ProcessedEvent(consumer=consumer, event_id=event_id))


@dataclass(frozen=True)
class Inbound:
    """One Kafka record as a handler sees it: where it came from and its original bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:  # for logs: where it is, never what it says
        return f"{self.topic}[{self.partition}]@{self.offset}"


Handler = Callable[[Inbound], Awaitable[None]]
OrderKey = Callable[[Inbound], Hashable]


class BatchScope(Protocol):
    """One polled batch as a ``BatchHandler`` handles it (module docstring)."""

    async def __call__(self, message: Inbound) -> None:
        """Handle one of the batch's records, as the handler would."""

    async def finish(self) -> None:
        """The batch's lanes are done (some may have failed); its offsets commit next."""


@runtime_checkable
class BatchHandler(Protocol):
    """A handler that also takes a polled batch whole (``subscribe(..., concurrency=n)``);
    handled one record at a time, it is called as a plain ``Handler``."""

    async def __call__(self, message: Inbound) -> None: ...

    async def prepare(self, messages: Sequence[Inbound]) -> BatchScope: ...


def kafka_key(message: Inbound) -> Hashable:
    return message.key


@dataclass(frozen=True)
class Backoff:
    """Delay before a failed message is retried: doubles per failure, up to ``maximum``."""

    initial: float = 0.5
    maximum: float = 30.0  # well under max.poll.interval, so the member stays in its group

    def delay(self, failures: int) -> float:
        return float(min(self.initial * 2 ** max(failures - 1, 0), self.maximum))


class Runner:
    """Delivers each record to a handler and settles it: commit, dead-letter, or retry."""

    def __init__(
        self, name: str, handler: Handler, dead_letters: DeadLetters, backoff: Backoff
    ) -> None:
        self.name = name
        self.handler = handler
        self.dead_letters = dead_letters
        self.backoff = backoff
        self._failures: dict[tuple[str, int], int] = {}

    async def settle(self, msg: KafkaMessage) -> None:
        """Returning acks (commits); raising nacks (seeks back, commits nothing)."""
        record = msg.raw_message
        assert not isinstance(record, tuple), "subscribed one record at a time"
        inbound = _inbound(record, msg.body)
        where = (inbound.topic, inbound.partition)
        try:
            await self._handle(inbound, self.handler)
        except Exception as exc:  # not the message's fault: keep it and try again later
            await self._back_off(where, str(inbound), exc)
            raise NackMessage() from exc
        self._failures.pop(where, None)

    async def _handle(self, inbound: Inbound, handler: Handler) -> None:
        try:
            await handler(inbound)
        except EventRejected as rejected:
            log.warning("%s: dead-lettering %s: %s", self.name, inbound, rejected)
            await self.dead_letters.publish(inbound, str(rejected))

    async def _back_off(self, where: tuple[str, int], what: str, exc: BaseException) -> None:
        failures = self._failures[where] = self._failures.get(where, 0) + 1
        delay = self.backoff.delay(failures)
        log.warning(
            "%s: %s failed (%s, attempt %d); retrying in %.1fs",
            *(self.name, what, type(exc).__name__, failures, delay),
        )
        await asyncio.sleep(delay)


class BatchRunner(Runner):
    """Settles a polled batch: per ordering key in offset order, up to ``concurrency``
    keys at once; commits the batch only when all of it is handled (module docstring)."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        dead_letters: DeadLetters,
        backoff: Backoff,
        concurrency: int,
        order_key: OrderKey,
    ) -> None:
        super().__init__(name, handler, dead_letters, backoff)
        self.concurrency = concurrency
        self.order_key = order_key

    async def settle(self, msg: KafkaMessage) -> None:
        records = msg.raw_message
        assert isinstance(records, tuple), "subscribed in batches"
        if not records:
            return
        # The poll returns each partition's records in offset order.
        received = [_inbound(record, record.value or b"") for record in records]
        lanes: dict[Hashable, list[Inbound]] = {}
        for inbound in received:
            lanes.setdefault(self._key(inbound), []).append(inbound)
        where = ("batch", 0)  # one back-off for the consumer: a batch spans partitions
        handler: Handler = self.handler
        scope: BatchScope | None = None
        if isinstance(self.handler, BatchHandler):
            try:
                scope = await self.handler.prepare(received)
            except Exception as error:  # nothing ran: the whole batch comes again
                await self._back_off(where, f"{received[0]} (preparing the batch)", error)
                raise NackMessage() from error
            handler = scope
        gate = asyncio.Semaphore(self.concurrency)
        failed: list[tuple[Inbound, Exception]] = []

        async def lane(messages: list[Inbound]) -> None:
            async with gate:
                for message in messages:
                    try:
                        with record_span(
                            message.topic, message.partition, message.offset, message.headers
                        ):
                            await self._handle(message, handler)
                    except Exception as exc:  # this key stops here: nothing after it runs
                        failed.append((message, exc))
                        return

        await asyncio.gather(*(lane(messages) for messages in lanes.values()))
        if scope is not None:
            try:
                await scope.finish()
            except Exception as error:  # the offsets must not commit past what it left undone
                failed.append((received[0], error))
        if failed:
            message, exc = min(failed, key=lambda f: (f[0].topic, f[0].partition, f[0].offset))
            others = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
            await self._back_off(where, f"{message}{others}", exc)
            raise NackMessage() from exc
        self._failures.pop(where, None)

    def _key(self, inbound: Inbound) -> Hashable:
        try:
            return self.order_key(inbound)
        except Exception:  # unreadable: the handler will dead-letter it; order by Kafka key
            return inbound.key


def _inbound(record: Any, value: bytes) -> Inbound:
    headers = {k: v or b"" for k, v in record.headers or ()}
    return Inbound(record.topic, record.partition, record.offset, record.key, value, headers)


def make_broker(settings: Settings, client_id: str) -> KafkaBroker:
    """A faststream broker for consumers and their dead letters.

    Dead letters are published with ``acks=all`` and awaited before the offset commits.
    Idempotence is off: aiokafka's idempotent producer cannot start on the embedded broker
    (InitProducerId), and a duplicate dead letter is harmless.
    """
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        allow_auto_create_topics=False,  # `linkway topics` provisions them, with retention
        middlewares=[KafkaTelemetryMiddleware()],  # continues the trace from the headers
        # On stop, the message in hand is finished (and committed) before the consumer
        # leaves its group; only then does the next member take the partition.
        graceful_timeout=settings.shutdown_grace_seconds,
    )


def subscribe(
    broker: KafkaBroker,
    *,
    name: str,
    topics: Sequence[str],
    handler: Handler,
    group_id: str | None = None,
    backoff: Backoff | None = None,
    concurrency: int = 1,
    order_key: OrderKey = kafka_key,
) -> Runner:
    """Subscribe ``handler`` to ``topics`` in consumer group ``group_id`` (default
    ``linkway.<name>``) with the contract above; ``name`` labels processed-event records
    and dead letters.

    ``concurrency`` above 1 handles each poll as a batch, up to that many ordering keys
    (``order_key``, by default the Kafka key) at once, each key in offset order: only for
    a handler whose effects need no order across keys."""
    dead_letters, backoff = DeadLetters(broker, name), backoff or Backoff()
    runner: Runner
    options: dict[str, Any]
    if concurrency > 1:
        runner = BatchRunner(name, handler, dead_letters, backoff, concurrency, order_key)
        options = {
            "batch": True,
            "max_records": BATCH_RECORDS,
            "batch_timeout_ms": BATCH_WAIT_MS,
            "parser": parse_batch_tolerating_headers,
        }
    else:
        runner = Runner(name, handler, dead_letters, backoff)
        options = {"parser": parse_tolerating_headers}

    async def consume(msg: KafkaMessage) -> None:
        await runner.settle(msg)

    broker.subscriber(
        *topics,
        group_id=group_id or f"linkway.{name}",
        # A new group starts at the beginning: events sent before the first start count.
        auto_offset_reset="earliest",
        # Commit after the handler returns; on any exception (ours after the back-off, or
        # one raised by faststream before the handler) seek back so nothing is skipped.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        **options,
    )(consume)
    return runner


# A batch is what one poll returns, up to this many records; an empty poll waits this long
# (twice: faststream sleeps as long again) before the next.
BATCH_RECORDS = 200
BATCH_WAIT_MS = 50


WATCH_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 3.0


async def watch(broker: KafkaBroker, health: Health, every: float = WATCH_SECONDS) -> None:
    """Keep a consumer's probes true until cancelled: live while this loop comes round,
    ready while the broker answers (a consumer that cannot reach it is not ready)."""
    while True:
        health.beat()
        try:
            reachable = await broker.ping(timeout=PING_TIMEOUT_SECONDS)
        except Exception:
            reachable = False
        if reachable:
            health.ready(True, broker="reachable")
        else:
            health.ready(False, broker="unreachable", reason="the broker does not answer")
        await asyncio.sleep(every)
