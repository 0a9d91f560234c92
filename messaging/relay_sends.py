"""One batch of the relay's sends to one producer, and how they settle.

Each send's future reports to the batch when it is acknowledged or fails (from the
producer's I/O thread), so waiting for the batch is one wait on an event that the last
answer sets: no polling. The first failure halts the producer at once, so that nothing
sent after the failed record reaches the broker ahead of its resend.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from messaging.producer import Record, traced_send

log = logging.getLogger("linkway.relay")

# Longer than the producer's delivery timeout, so every send has settled by then.
SEND_TIMEOUT_SECONDS = 30.0
# After stop(), sends already made get this long to be acknowledged (and marked).
STOP_GRACE_SECONDS = 2.0
# Marks a re-sent event: the same event, byte for byte, sent again.
REPLAY_HEADER = ("linkway-replay", b"true")
# How often a wait looks at the stop flag; an answer ends the wait at once.
_STOP_CHECK_SECONDS = 0.1


class Sends:
    """The records of one batch handed to ``producer``, in order, with their futures."""

    def __init__(self, producer: KafkaProducer, stop: threading.Event) -> None:
        self.producer = producer
        self.futures: list[tuple[int, FutureRecordMetadata]] = []
        self.errors: list[Exception] = []  # in the order the producer reported them
        self._stop = stop
        self._lock = threading.Lock()
        self._unsettled = 0
        self._settled = threading.Event()
        self._settled.set()

    def send(self, seq: int, row: Record, replay: bool = False) -> None:
        future = traced_send(self.producer, row, [REPLAY_HEADER] if replay else [])
        with self._lock:
            self._unsettled += 1
            self._settled.clear()
        # The errback first: by the time the batch counts as settled, its error is known.
        future.add_errback(self._failed)
        future.add_both(self._answered)
        self.futures.append((seq, future))

    def _failed(self, exc: Exception) -> None:
        # Stop the producer at the first failure: a later batch for the same partition
        # must not reach the broker ahead of the failed row's resend.
        self.errors.append(exc)
        halt(self.producer)

    def _answered(self, _: Any) -> None:
        with self._lock:
            self._unsettled -= 1
            if self._unsettled == 0:
                self._settled.set()

    def settle(self) -> None:
        """Wait until every send succeeded or failed, but not for long after stop().

        One flush first: the producer sends what it holds at once instead of lingering
        (``linger_ms``) over the batch's last records; its wait is short, so a broker
        that does not answer leaves the rest of the wait to the stop-aware loop."""
        deadline = time.monotonic() + SEND_TIMEOUT_SECONDS
        if not self._settled.is_set():
            # Not all answered within it, or the producer was halted: the loop waits on.
            with contextlib.suppress(KafkaError):
                self.producer.flush(timeout=_STOP_CHECK_SECONDS)
        while not self._settled.is_set():
            now = time.monotonic()
            if self._stop.is_set():
                deadline = min(deadline, now + STOP_GRACE_SECONDS)
            if now >= deadline:
                return
            self._settled.wait(min(deadline - now, _STOP_CHECK_SECONDS))


def halt(producer: KafkaProducer) -> None:
    """Stop the producer's I/O thread now, failing every pending send. Safe from any
    thread, the producer's own included (an errback runs there)."""
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()


def close(producer: KafkaProducer, timeout: float) -> None:
    """Close, dropping whatever is still pending after ``timeout`` seconds."""
    try:
        producer.close(timeout=timeout)
        return
    except KafkaError:
        # close() flushes first and raises when records are still pending, before it would
        # force-close; so force it here, then close what is left.
        pass
    halt(producer)
    sender = getattr(producer, "_sender", None)
    if sender is not None and sender is not threading.current_thread():
        sender.join(STOP_GRACE_SECONDS)
    try:
        producer.close(timeout=0)
    except KafkaError:
        log.debug("relay: a producer did not close cleanly", exc_info=True)
