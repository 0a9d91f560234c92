"""The outbox relay: publishes outbox rows to Kafka in commit order, then marks them.

Delivery is at-least-once by design (a crash between the broker's acknowledgement and
the mark re-publishes the row), and every consumer is idempotent by event id, so the
effect is exactly once. While the broker is down the relay backs off and retries the
same rows; it never skips one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from events.outbox import OutboxRow, unpublished
from infra.db import transaction
from infra.settings import Settings

log = logging.getLogger("linkway.relay")

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
MAX_BACKOFF_SECONDS = 30.0


class UnsafeProducerSettings(RuntimeError):
    """The relay refuses to start with settings that could lose or reorder events."""


def check_producer_settings(settings: Settings) -> None:
    problems = []
    if settings.kafka_acks != "all":
        problems.append(f"LINKWAY_KAFKA_ACKS is {settings.kafka_acks!r}; it must be 'all'")
    if not settings.kafka_enable_idempotence:
        problems.append("LINKWAY_KAFKA_ENABLE_IDEMPOTENCE is off; it must be on")
    if problems:
        raise UnsafeProducerSettings("; ".join(problems))


def make_producer(settings: Settings) -> KafkaBroker:
    check_producer_settings(settings)
    return KafkaBroker(
        settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        client_id="linkway-relay",
        logger=None,
    )


class OutboxRelay:
    def __init__(self, engine: Engine, broker: KafkaBroker, settings: Settings) -> None:
        self.engine = engine
        self.broker = broker
        self.batch_size = settings.relay_batch_size
        self.poll_seconds = settings.relay_poll_seconds
        self._stop = asyncio.Event()

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows went out."""
        with transaction(self.engine) as session:
            rows = unpublished(session, self.batch_size)
        if not rows:
            return 0
        sent: list[int] = []
        try:
            for row in rows:
                # Awaiting each acknowledgement keeps commit order per key, even if the
                # broker rejects a row midway; those already acknowledged are still marked.
                await self.broker.publish(
                    row.payload.encode(),
                    topic=row.topic,
                    key=row.key.encode(),
                    headers={"content-type": CLOUDEVENTS_CONTENT_TYPE, **json.loads(row.headers)},
                )
                assert row.seq is not None
                sent.append(row.seq)
        finally:
            if sent:
                self._mark(sent)
        return len(sent)

    def _mark(self, seqs: list[int]) -> None:
        with transaction(self.engine) as session:
            session.execute(
                update(OutboxRow)
                .where(col(OutboxRow.seq).in_(seqs))
                .values(published_at=datetime.now(UTC))
            )

    async def run(self) -> None:
        backoff = self.poll_seconds
        while not self._stop.is_set():
            try:
                count = await self.publish_pending()
                backoff = self.poll_seconds
            except Exception as exc:  # the broker is down or refused: retry the same rows
                log.warning(
                    "relay: publish failed (%s); retrying in %.1fs", type(exc).__name__, backoff
                )
                count = 0
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if count < self.batch_size:
                await self._sleep(self.poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    def stop(self) -> None:
        self._stop.set()
