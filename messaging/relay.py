"""The outbox relay: publishes outbox rows to Kafka in commit order, then marks them.

Delivery is at-least-once by design (a crash between the broker's acknowledgement and
the mark re-publishes the row), and every consumer is idempotent by event id, so the
effect is exactly once. While the broker is down the relay backs off and retries the
same rows; it never skips one and never marks a row the broker has not acknowledged.

The relay is a plain loop around a synchronous producer, so it uses kafka-python's
idempotent producer (``acks=all``): it is also the client that speaks the idempotent
producer protocol to both Apache Kafka and the embedded broker.

After a failed batch the relay throws its producer away and starts the next attempt
with a new one. A producer that has seen an error may be in a fatal state for good:
kafka-python's producer cannot bump its epoch on a broker that lost its producer state
(an in-memory broker that restarted), and every later send would fail.

A broker that lost its log (an in-memory broker restarted, a cluster rebuilt) must get
its history back before anything new, or a partner reading it would see a referral's
new events ahead of its older ones. So before publishing with a new producer (at start,
on taking the lease, and after every failure, which is how a broker's restart shows)
the relay compares the broker's log with the marks of what it has published
(``messaging.logmarks``: per partition, the first offset of the last batch marked
there, kept in the database with the rows' marks): a partition whose end is not past
its mark has lost history. The relay then publishes nothing new until it has sent that
topic's whole published history again, in outbox order (with the ``linkway-replay``
header, as ``linkway replay`` sends it). An acknowledgement at an offset not past one
seen before (the log went back while the relay was idle) makes the relay check again
before its next batch.

Any number of relays may run; exactly one publishes at a time: the one holding the
database's publishing lease (``messaging.lease``). The others stand by, trying to take
the lease every ``relay_renew_seconds``; the active one renews it as often. A relay
killed outright is replaced once its lease lapses: within ``relay_lease_seconds`` plus
one attempt. Fencing, so that a deposed relay (paused, partitioned from the database,
slow) cannot publish with a stale lease:

- before each batch it renews the lease in the database, and sends nothing if another
  relay has taken it (the fencing token in the row has moved on);
- before each send it checks its local deadline (the lease's duration from before the
  last renewal, on the monotonic clock): after a pause past the lease it sends nothing
  more until the database has renewed the lease;
- it marks rows published only in a transaction that renewed the lease first, so a
  deposed relay never marks a row.

The Kafka send is outside the database transaction, so one window stays: records a relay
had already handed to its producer when it was paused reach the broker when it resumes,
after its successor may have sent the same rows. They are duplicates (the same event id,
which every consumer discards) of the dead or deposed relay's last, unmarked batch: the
at-least-once window. Each referral's events still reach the broker first in commit
order: the successor starts from the oldest unmarked row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from infra.db import transaction
from infra.health import Health
from infra.settings import Settings
from messaging import logmarks
from messaging.lease import Lease
from messaging.outbox import OutboxRow, unpublished
from messaging.producer import (
    UnsafeProducerSettings,
    broker_log_ends,
    check_producer,
    check_producer_settings,
    make_producer,
    producer_config,
    record_headers,
    traced_send,
)

__all__ = [
    "REPLAY_HEADER",
    "SEND_TIMEOUT_SECONDS",
    "STOP_GRACE_SECONDS",
    "Deposed",
    "OutboxRelay",
    "UnsafeProducerSettings",
    "broker_log_ends",
    "check_producer",
    "check_producer_settings",
    "make_producer",
    "producer_config",
    "record_headers",
    "traced_send",
]

log = logging.getLogger("linkway.relay")

MAX_BACKOFF_SECONDS = 30.0
# Longer than the producer's delivery timeout, so every send has settled by then.
SEND_TIMEOUT_SECONDS = 30.0
# After stop(), sends already made get this long to be acknowledged (and marked).
STOP_GRACE_SECONDS = 2.0
# Marks a re-sent event: the same event, byte for byte, sent again.
REPLAY_HEADER = ("linkway-replay", b"true")
HISTORY_CHUNK = 500  # history rows read, sent and acknowledged at a time
# The end offset of each partition of each named topic; a topic the broker does not have
# is left out.
LogEnds = Callable[[list[str]], dict[str, dict[int, int]]]


class Deposed(RuntimeError):
    """Another relay holds the publishing lease: this one must publish nothing."""


class OutboxRelay:
    """Publishes the outbox. It owns its producer: it replaces it after a failure (with
    ``new_producer``, by default one from ``settings``) and closes it when ``run`` returns.
    """

    def __init__(
        self,
        engine: Engine,
        producer: KafkaProducer,
        settings: Settings,
        *,
        new_producer: Callable[[], KafkaProducer] | None = None,
        log_ends: LogEnds | None = None,
        lease: Lease | None = None,
        health: Health | None = None,
    ) -> None:
        check_producer(producer)
        if settings.relay_renew_seconds * 2 > settings.relay_lease_seconds:
            raise ValueError(
                "LINKWAY_RELAY_RENEW_SECONDS must be at most half of LINKWAY_RELAY_LEASE_SECONDS, "
                "so that a renewal can fail once and still be retried before the lease lapses"
            )
        self.engine = engine
        self.producer: KafkaProducer | None = producer
        self._new_producer = new_producer or (lambda: make_producer(settings))
        self.batch_size = settings.relay_batch_size
        self.poll_seconds = settings.relay_poll_seconds
        self._stop = threading.Event()
        self._log_ends = log_ends or (lambda topics: broker_log_ends(settings, topics))
        # Whether the broker's log has been checked against the outbox since the last
        # failure; and the highest offset acknowledged per partition, in this process.
        self._log_checked = False
        self._acked: dict[tuple[str, int], int] = {}
        self.lease = lease or Lease(engine, duration=settings.relay_lease_seconds)
        self.renew_seconds = settings.relay_renew_seconds
        # "starting", "active" or "standby": what the relay last found; for its probes.
        self.role = "starting"
        # Its probes: live while the loop comes round; ready while the database answers
        # (a standby is ready: it is doing its job, which is to wait).
        self.health = health or Health("relay")

    @property
    def active(self) -> bool:
        return self.role == "active" and self.lease.holds()

    def lead(self) -> bool:
        """Take or renew the lease when due; True while this relay is the active one."""
        if self.lease.holds() and self.lease.since_renewal() < self.renew_seconds:
            return True
        held = self.lease.acquire()
        self._become("active" if held else "standby")
        return held

    def _report(self, ok: bool, reason: str | None = None) -> None:
        detail: dict[str, Any] = {"role": self.role, "active": self.active}
        if self.active:
            detail["token"] = self.lease.token
        if reason:
            detail["reason"] = reason
        self.health.ready(ok, **detail)

    def _renew_or_stand_down(self) -> None:
        held = self.lease.acquire()
        self._become("active" if held else "standby")
        if not held:
            raise Deposed("another relay holds the publishing lease")

    def _become(self, role: str) -> None:
        if role == self.role:
            return
        previous, self.role = self.role, role
        if role == "active":
            # A new term: the broker's log is checked again before the first batch.
            self._log_checked = False
            log.warning(
                "relay: active: this relay holds the publishing lease (token %s, holder %s)",
                self.lease.token,
                self.lease.holder,
            )
        elif previous == "active":
            log.warning(
                "relay: deposed: another relay took the publishing lease; "
                "publishing nothing, standing by (holder %s)",
                self.lease.holder,
            )
        else:
            log.warning(
                "relay: standby: another relay holds the publishing lease; "
                "taking over if it lapses (holder %s)",
                self.lease.holder,
            )

    def publish_pending(self) -> int:
        """Publish one batch in outbox order; returns how many rows were acknowledged.

        Only the acknowledged prefix of the batch is marked: if a row fails, it and every
        row after it are sent again next time, so no key's events are ever skipped.
        """
        with transaction(self.engine) as session:
            rows = unpublished(session, self.batch_size)
        if not rows:
            return 0
        # Fencing: renew the lease in the database before every batch; a relay that was
        # deposed (paused, partitioned) while it read finds out here and sends nothing.
        self._renew_or_stand_down()
        producer = self._producer()
        if not self._log_checked:
            try:
                self._restore_lost_history(producer)
            except Exception:
                self._discard(producer)
                raise
            self._log_checked = True
        sends: list[tuple[int, FutureRecordMetadata]] = []
        errors: list[Exception] = []  # in the order the producer reported them
        try:
            for row in rows:
                if self._stop.is_set():
                    break  # the rest waits for the next run; nothing is lost
                if not self.lease.holds():
                    break  # the lease may have lapsed (a pause): renew before sending more
                assert row.seq is not None
                sends.append((row.seq, self._send(producer, row, errors)))
        except Exception as exc:  # e.g. send() gave up waiting for metadata: the broker is away
            errors.append(exc)
        self._settle(sends)
        acknowledged: list[int] = []
        offsets: list[tuple[str, int, int]] = []
        for seq, future in sends:
            if not future.succeeded():
                if not future.is_done and not self._stop.is_set():
                    errors.append(KafkaTimeoutError("no acknowledgement in time"))
                break
            acknowledged.append(seq)
            offsets.extend(self._note_offset(future.value))
        if acknowledged:
            self._mark(acknowledged, offsets)
        if errors:
            self._discard(producer)
            raise errors[0]  # the cause: the rest were aborted because of it
        return len(acknowledged)

    def _producer(self) -> KafkaProducer:
        if self.producer is None:
            producer = self._new_producer()
            check_producer(producer)
            self.producer = producer
        return self.producer

    def _restore_lost_history(self, producer: KafkaProducer) -> None:
        """Send again, in outbox order, the published history of every topic the broker
        has lost, before anything new is published to it."""
        with Session(self.engine) as session:
            published = list(
                session.exec(
                    select(OutboxRow.topic)
                    .where(col(OutboxRow.published_at).is_not(None))
                    .group_by(col(OutboxRow.topic))
                ).all()
            )
            marked = logmarks.marks(session)
        if not published:
            return
        ends = self._log_ends(sorted(set(published) | {topic for topic, _ in marked}))
        for topic in sorted(logmarks.lost_topics(published, marked, ends)):
            log.warning("relay: the broker lost a topic's history; sending it again first")
            self._acked = {tp: o for tp, o in self._acked.items() if tp[0] != topic}
            sent = self._replay_topic(producer, topic)
            log.warning("relay: %d events of history sent again; publishing resumes", sent)

    def _replay_topic(self, producer: KafkaProducer, topic: str) -> int:
        sent, after = 0, 0
        with transaction(self.engine) as session:
            self._fence(session)
            logmarks.forget(session, topic)
        while not self._stop.is_set():
            with Session(self.engine) as session:
                rows = list(
                    session.exec(
                        select(OutboxRow)
                        .where(
                            OutboxRow.topic == topic,
                            col(OutboxRow.published_at).is_not(None),
                            col(OutboxRow.seq) > after,
                        )
                        .order_by(col(OutboxRow.seq))
                        .limit(HISTORY_CHUNK)
                    )
                )
            if not rows:
                return sent
            self._renew_or_stand_down()
            errors: list[Exception] = []
            sends = [(row.seq or 0, self._send(producer, row, errors, replay=True)) for row in rows]
            self._settle(sends)
            offsets: list[tuple[str, int, int]] = []
            for _, future in sends:
                if not future.succeeded():
                    raise errors[0] if errors else KafkaTimeoutError("no acknowledgement in time")
                offsets.extend(self._note_offset(future.value))
            with transaction(self.engine) as session:
                self._fence(session)
                logmarks.record(session, offsets)
            sent, after = sent + len(rows), rows[-1].seq or after
        raise KafkaTimeoutError("stopped while sending history again")

    def _note_offset(self, metadata: Any) -> list[tuple[str, int, int]]:
        """The acknowledgement's (topic, partition, offset), for the log marks; none if the
        producer did not say where the record went."""
        topic, partition = getattr(metadata, "topic", None), getattr(metadata, "partition", None)
        offset = getattr(metadata, "offset", None)
        if topic is None or partition is None or offset is None or offset < 0:
            return []
        if offset <= self._acked.get((topic, partition), -1):
            # The log went back: the broker lost it while the relay was idle. Check (and
            # send the history again) before the next batch.
            self._log_checked = False
        self._acked[(topic, partition)] = offset
        return [(topic, partition, offset)]

    def _send(
        self, producer: KafkaProducer, row: OutboxRow, errors: list[Exception], replay: bool = False
    ) -> FutureRecordMetadata:
        future = traced_send(producer, row, [REPLAY_HEADER] if replay else [])

        def failed(exc: Exception) -> None:
            # Stop the producer at the first failure: a later batch for the same partition
            # must not reach the broker ahead of the failed row's resend.
            errors.append(exc)
            _halt(producer)

        future.add_errback(failed)
        return future

    def _settle(self, sends: list[tuple[int, FutureRecordMetadata]]) -> None:
        """Wait until every send succeeded or failed, but not for long after stop()."""
        deadline = time.monotonic() + SEND_TIMEOUT_SECONDS
        while not all(future.is_done for _, future in sends):
            now = time.monotonic()
            if self._stop.is_set():
                deadline = min(deadline, now + STOP_GRACE_SECONDS)
            if now >= deadline:
                return
            time.sleep(0.005)

    def _discard(self, producer: KafkaProducer) -> None:
        # A failure may be a broker that restarted without its log: check before the next
        # batch.
        self._log_checked = False
        _close(producer, timeout=0)
        if self.producer is producer:
            self.producer = None

    def _fence(self, session: Session) -> None:
        """Renew the lease in ``session``'s transaction first; its row stays locked until
        the commit. A deposed relay writes nothing: its successor sends those rows again
        (the at-least-once window)."""
        if not self.lease.fence(session):
            self._become("standby")
            raise Deposed("lost the publishing lease before marking a batch")

    def _mark(self, seqs: list[int], offsets: list[tuple[str, int, int]]) -> None:
        with transaction(self.engine) as session:
            self._fence(session)
            session.execute(
                update(OutboxRow)
                .where(col(OutboxRow.seq).in_(seqs))
                .values(published_at=datetime.now(UTC))
            )
            logmarks.record(session, offsets)

    def run(self) -> None:
        backoff = self.poll_seconds
        try:
            while not self._stop.is_set():
                self.health.beat()
                try:
                    if not self.lead():
                        self._report(True)
                        self._stop.wait(self.renew_seconds)
                        continue
                    count = self.publish_pending()
                    self._report(True)
                    backoff = self.poll_seconds
                except Deposed:
                    self._become("standby")
                    self._report(True)
                    if self.producer is not None:
                        self._discard(self.producer)
                    self._stop.wait(self.renew_seconds)
                    continue
                except Exception as exc:
                    self._report(False, reason=type(exc).__name__)
                    log.warning(
                        "relay: publish failed (%s); retrying in %.1fs",
                        *(type(exc).__name__, backoff),
                    )
                    self._stop.wait(backoff)
                    backoff = min(max(backoff, 0.5) * 2, MAX_BACKOFF_SECONDS)
                    continue
                if count < self.batch_size:
                    self._stop.wait(self.poll_seconds)
        finally:
            if self.producer is not None:
                # The last batch has had its grace already; what is still pending stays
                # unmarked and goes again next time.
                _close(self.producer, timeout=0)
                self.producer = None
            try:
                self.lease.release()  # a standby takes over at once
            except Exception:
                log.warning("relay: could not release the lease; it lapses on its own")

    def stop(self) -> None:
        """Ask ``run`` to return. It does within about ``max_block_ms`` (10 s) even while
        the broker is down; rows sent but not yet acknowledged stay unmarked."""
        self._stop.set()


def _halt(producer: KafkaProducer) -> None:
    """Stop the producer's I/O thread now, failing every pending send. Safe from any
    thread, the producer's own included (an errback runs there)."""
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()


def _close(producer: KafkaProducer, timeout: float) -> None:
    """Close, dropping whatever is still pending after ``timeout`` seconds."""
    try:
        producer.close(timeout=timeout)
        return
    except KafkaError:
        # close() flushes first and raises when records are still pending, before it would
        # force-close; so force it here, then close what is left.
        pass
    _halt(producer)
    sender = getattr(producer, "_sender", None)
    if sender is not None and sender is not threading.current_thread():
        sender.join(STOP_GRACE_SECONDS)
    try:
        producer.close(timeout=0)
    except KafkaError:
        log.debug("relay: a producer did not close cleanly", exc_info=True)
