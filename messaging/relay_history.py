"""What the relay knows of the broker's log, and sending a lost topic's history again.

A broker that lost its log (an in-memory broker restarted, a cluster rebuilt) must get
its history back before anything new, or a partner reading it would see a referral's
new events ahead of its older ones. Before publishing with a new producer the relay
compares the broker's log with what it has published (``restore``): a topic whose
partitions hold fewer records than the outbox has published to it, or a partition whose
end is not past an offset this relay saw acknowledged, has lost history, and that
topic's whole published history goes again, in outbox order, with the
``linkway-replay`` header. An acknowledgement at an offset not past one seen before
(``note``: the log went back while the relay was idle) makes the relay check again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from messaging.outbox import OutboxRow, published
from messaging.relay_sends import Sends

log = logging.getLogger("linkway.relay")

HISTORY_CHUNK = 500  # history rows read, sent and acknowledged at a time
# The end offset of each partition of each named topic; a topic the broker does not have
# is left out.
LogEnds = Callable[[list[str]], dict[str, dict[int, int]]]


class BrokerHistory:
    def __init__(self, engine: Engine, log_ends: LogEnds, stop: threading.Event) -> None:
        self.engine = engine
        self._log_ends = log_ends
        self._stop = stop
        # Whether the broker's log has been checked against the outbox since the last
        # failure; and the highest offset acknowledged per partition, in this process.
        self.checked = False
        self._acked: dict[tuple[str, int], int] = {}

    def note(self, metadata: Any) -> None:
        """An acknowledgement's offset: one not past the last seen means the log went back."""
        topic, partition = getattr(metadata, "topic", None), getattr(metadata, "partition", None)
        offset = getattr(metadata, "offset", None)
        if topic is None or partition is None or offset is None:
            return
        if offset <= self._acked.get((topic, partition), -1):
            # The log went back: the broker lost it while the relay was idle. Check (and
            # send the history again) before the next batch.
            self.checked = False
        self._acked[(topic, partition)] = offset

    def restore(self, producer: KafkaProducer, fence: Callable[[], None]) -> None:
        """Send again, in outbox order, the published history of every topic the broker
        has lost, before anything new is published to it. ``fence`` renews the lease (or
        raises) before each chunk is sent."""
        with Session(self.engine) as session:
            counts = dict(
                session.exec(
                    select(OutboxRow.topic, func.count())
                    .where(col(OutboxRow.published_at).is_not(None))
                    .group_by(col(OutboxRow.topic))
                ).all()
            )
        if not counts:
            return
        ends = self._log_ends(sorted(counts))
        lost = {
            topic for topic, count in counts.items() if sum(ends.get(topic, {}).values()) < count
        }
        lost |= {
            topic
            for (topic, partition), offset in self._acked.items()
            if ends.get(topic, {}).get(partition, 0) <= offset
        }
        for topic in sorted(lost):
            log.warning("relay: the broker lost a topic's history; sending it again first")
            self._acked = {tp: o for tp, o in self._acked.items() if tp[0] != topic}
            sent = self._replay_topic(producer, topic, fence)
            log.warning("relay: %d events of history sent again; publishing resumes", sent)

    def _replay_topic(self, producer: KafkaProducer, topic: str, fence: Callable[[], None]) -> int:
        sent, after = 0, 0
        while not self._stop.is_set():
            with Session(self.engine) as session:
                rows = published(session, topic, after, HISTORY_CHUNK)
            if not rows:
                return sent
            fence()
            sends = Sends(producer, self._stop)
            for row in rows:
                sends.send(row.seq, row, replay=True)
            sends.settle()
            for _, future in sends.futures:
                if not future.succeeded():
                    errors = sends.errors
                    raise errors[0] if errors else KafkaTimeoutError("no acknowledgement in time")
                self.note(future.value)
            sent, after = sent + len(rows), rows[-1].seq
        raise KafkaTimeoutError("stopped while sending history again")
