"""What the relay knows of the broker's log, and sending a lost topic's history again.

A broker that lost its log (an in-memory broker restarted, a cluster rebuilt) must get
its history back before anything new, or a partner reading it would see a referral's
new events ahead of its older ones. So before publishing with a new producer (at start,
on taking the lease, and after every failure, which is how a broker's restart shows)
the relay compares the broker's log with the marks of what it has published
(``messaging.logmarks``: per partition, the first offset of the last batch marked
there, kept in the database with the rows' marks): a partition whose end is not past
its mark has lost history (``restore``). The relay then publishes nothing new until it
has sent that topic's whole published history again, in outbox order (with the
``linkway-replay`` header, as ``linkway replay`` sends it). An acknowledgement at an
offset not past one seen before (``note``: the log went back while the relay was idle)
makes the relay check again before its next batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from infra.db import transaction
from messaging import logmarks
from messaging.outbox import OutboxRow, published
from messaging.relay_sends import Sends

log = logging.getLogger("linkway.relay")

HISTORY_CHUNK = 500  # history rows read, sent and acknowledged at a time
# The end offset of each partition of each named topic; a topic the broker does not have
# is left out.
LogEnds = Callable[[list[str]], dict[str, dict[int, int]]]
# Renews the lease in the caller's transaction, or raises: what writes the log marks.
Fence = Callable[[Session], None]


class BrokerHistory:
    def __init__(self, engine: Engine, log_ends: LogEnds, stop: threading.Event) -> None:
        self.engine = engine
        self._log_ends = log_ends
        self._stop = stop
        # Whether the broker's log has been checked against the outbox since the last
        # failure; and the highest offset acknowledged per partition, in this process.
        self.checked = False
        self._acked: dict[tuple[str, int], int] = {}

    def note(self, metadata: Any) -> list[tuple[str, int, int]]:
        """An acknowledgement's (topic, partition, offset), for the log marks; none if the
        producer did not say where the record went. An offset not past the last one seen
        means the log went back."""
        topic, partition = getattr(metadata, "topic", None), getattr(metadata, "partition", None)
        offset = getattr(metadata, "offset", None)
        if topic is None or partition is None or offset is None or offset < 0:
            return []
        if offset <= self._acked.get((topic, partition), -1):
            # The log went back: the broker lost it while the relay was idle. Check (and
            # send the history again) before the next batch.
            self.checked = False
        self._acked[(topic, partition)] = offset
        return [(topic, partition, offset)]

    def restore(self, producer: KafkaProducer, renew: Callable[[], None], fence: Fence) -> None:
        """Send again, in outbox order, the published history of every topic the broker
        has lost, before anything new is published to it. ``renew`` renews the lease (or
        raises) before each chunk is sent; ``fence`` does it in a transaction that writes
        the log marks."""
        with Session(self.engine) as session:
            topics = list(
                session.exec(
                    select(OutboxRow.topic)
                    .where(col(OutboxRow.published_at).is_not(None))
                    .group_by(col(OutboxRow.topic))
                ).all()
            )
            marked = logmarks.marks(session)
        if not topics:
            return
        ends = self._log_ends(sorted(set(topics) | {topic for topic, _ in marked}))
        for topic in sorted(logmarks.lost_topics(topics, marked, ends)):
            log.warning("relay: the broker lost a topic's history; sending it again first")
            self._acked = {tp: o for tp, o in self._acked.items() if tp[0] != topic}
            sent = self._replay_topic(producer, topic, renew, fence)
            log.warning("relay: %d events of history sent again; publishing resumes", sent)

    def _replay_topic(
        self, producer: KafkaProducer, topic: str, renew: Callable[[], None], fence: Fence
    ) -> int:
        sent, after = 0, 0
        with transaction(self.engine) as session:
            fence(session)
            logmarks.forget(session, topic)
        while not self._stop.is_set():
            with Session(self.engine) as session:
                rows = published(session, topic, after, HISTORY_CHUNK)
            if not rows:
                return sent
            renew()
            sends = Sends(producer, self._stop)
            for row in rows:
                sends.send(row.seq, row, replay=True)
            sends.settle()
            offsets: list[tuple[str, int, int]] = []
            for _, future in sends.futures:
                if not future.succeeded():
                    errors = sends.errors
                    raise errors[0] if errors else KafkaTimeoutError("no acknowledgement in time")
                offsets.extend(self.note(future.value))
            with transaction(self.engine) as session:
                fence(session)
                logmarks.record(session, offsets)
            sent, after = sent + len(rows), rows[-1].seq
        raise KafkaTimeoutError("stopped while sending history again")
