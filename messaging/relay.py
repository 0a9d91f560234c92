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

A broker that lost its log (an in-memory broker restarted) gets its published history
again, in outbox order, before anything new: ``messaging.relay_history``.

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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from sqlalchemy import Row, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from infra.db import transaction
from infra.health import Health
from infra.settings import Settings
from messaging import logmarks
from messaging.lease import Lease
from messaging.outbox import OutboxRow, pending
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
from messaging.relay_history import HISTORY_CHUNK, BrokerHistory, LogEnds
from messaging.relay_sends import (
    REPLAY_HEADER,
    SEND_TIMEOUT_SECONDS,
    STOP_GRACE_SECONDS,
    Sends,
    close,
)

__all__ = [
    "HISTORY_CHUNK",
    "REPLAY_HEADER",
    "SEND_TIMEOUT_SECONDS",
    "STOP_GRACE_SECONDS",
    "Deposed",
    "LogEnds",
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
        self.history = BrokerHistory(
            engine, log_ends or (lambda topics: broker_log_ends(settings, topics)), self._stop
        )
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
            self.history.checked = False
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
        rows = self._pending()
        if not rows:
            return 0
        producer = self._producer()
        if not self.history.checked:
            try:
                self.history.restore(producer, self._renew_or_stand_down, self._fence)
            except Exception:
                self._discard(producer)
                raise
            self.history.checked = True
        sends = Sends(producer, self._stop)
        try:
            for row in rows:
                if self._stop.is_set():
                    break  # the rest waits for the next run; nothing is lost
                if not self.lease.holds():
                    break  # the lease may have lapsed (a pause): renew before sending more
                sends.send(row.seq, row)
        except Exception as exc:  # e.g. send() gave up waiting for metadata: the broker is away
            sends.errors.append(exc)
        sends.settle()
        acknowledged: list[int] = []
        offsets: list[tuple[str, int, int]] = []
        for seq, future in sends.futures:
            if not future.succeeded():
                if not future.is_done and not self._stop.is_set():
                    sends.errors.append(KafkaTimeoutError("no acknowledgement in time"))
                break
            acknowledged.append(seq)
            offsets.extend(self.history.note(future.value))
        if acknowledged:
            self._mark(acknowledged, offsets)
        if sends.errors:
            self._discard(producer)
            raise sends.errors[0]  # the cause: the rest were aborted because of it
        return len(acknowledged)

    def _pending(self) -> Sequence[Row[tuple[int, str, str, str, str]]]:
        """The next batch, as plain rows. Fencing: the lease is renewed in the database
        before every batch is sent, in the transaction that read it (one round trip), so
        a relay deposed (paused, partitioned) while it read finds out here and sends
        nothing."""
        if self.lease.token is None:
            # Not holding it yet (``publish_pending`` called on its own): take it.
            with transaction(self.engine) as session:
                rows = pending(session, self.batch_size)
            if rows:
                self._renew_or_stand_down()
            return rows
        with transaction(self.engine) as session:
            rows = pending(session, self.batch_size)
            if rows:
                self._fence(session)
        return rows

    def _producer(self) -> KafkaProducer:
        if self.producer is None:
            producer = self._new_producer()
            check_producer(producer)
            self.producer = producer
        return self.producer

    def _discard(self, producer: KafkaProducer) -> None:
        # A failure may be a broker that restarted without its log: check before the next
        # batch.
        self.history.checked = False
        close(producer, timeout=0)
        if self.producer is producer:
            self.producer = None

    def _fence(self, session: Session) -> None:
        """Renew the lease in ``session``'s transaction first; its row stays locked until
        the commit. A deposed relay writes nothing: its successor sends those rows again
        (the at-least-once window)."""
        if not self.lease.fence(session):
            self._become("standby")
            raise Deposed("another relay took the publishing lease")

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
                close(self.producer, timeout=0)
                self.producer = None
            try:
                self.lease.release()  # a standby takes over at once
            except Exception:
                log.warning("relay: could not release the lease; it lapses on its own")

    def stop(self) -> None:
        """Ask ``run`` to return. It does within about ``max_block_ms`` (10 s) even while
        the broker is down; rows sent but not yet acknowledged stay unmarked."""
        self._stop.set()
