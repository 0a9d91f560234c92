"""The relay's bookkeeping against a scripted producer (no broker): only acknowledged rows
are marked, a failure restarts from the first unacknowledged row with a new producer,
stop() is prompt even when the broker never answers, and a broker that lost its log gets
the history again before anything new."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.future import Future
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from infra.settings import Settings
from messaging.outbox import OutboxRow
from messaging.relay import REPLAY_HEADER, STOP_GRACE_SECONDS, OutboxRelay

SETTINGS = Settings(relay_batch_size=50, relay_poll_seconds=0.01)


def kept_everything(topics: list[str]) -> dict[str, dict[int, int]]:
    """A broker whose log holds all that was ever published to it."""
    return {topic: {0: 10**9} for topic in topics}


class ScriptedProducer:
    """Answers each send as ``script(key)`` says: "ack", "fail", "hang" or "raise"."""

    config: dict[str, Any] = {"acks": -1, "enable_idempotence": True}

    def __init__(self, script: Callable[[str], str]) -> None:
        self.script = script
        self.sent: list[str] = []
        self.replayed: list[str] = []
        self.closed = False

    def send(self, topic: str, value: bytes, key: bytes, headers: list) -> Future:
        answer = self.script(key.decode())
        if answer == "raise":  # what send() does when metadata never comes
            raise KafkaTimeoutError("metadata not available")
        self.sent.append(key.decode())
        if REPLAY_HEADER in headers:
            self.replayed.append(key.decode())
        future = Future()
        if answer == "ack":
            future.success(object())
        elif answer == "fail":
            future.failure(KafkaTimeoutError("expired"))
        return future

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def add_rows(engine: Engine, keys: list[str]) -> None:
    with Session(engine) as session:
        for key in keys:
            session.add(OutboxRow(event_id=f"e-{key}", topic="t", key=key, type="x", payload="{}"))
        session.commit()


def marked(engine: Engine) -> list[str]:
    with Session(engine) as session:
        stmt = select(OutboxRow.key).where(col(OutboxRow.published_at).is_not(None))
        return sorted(session.exec(stmt))


def test_only_the_acknowledged_prefix_is_marked_and_the_rest_goes_again_in_order(engine):
    add_rows(engine, ["a", "b", "c", "d", "e"])
    first = ScriptedProducer(lambda key: "fail" if key == "c" else "ack")
    second = ScriptedProducer(lambda key: "ack")
    relay = OutboxRelay(
        engine, first, SETTINGS, new_producer=lambda: second, log_ends=kept_everything
    )

    with pytest.raises(KafkaTimeoutError):
        relay.publish_pending()
    assert marked(engine) == ["a", "b"]  # d and e were acknowledged, but after a gap
    assert first.closed

    assert relay.publish_pending() == 3
    assert second.sent == ["c", "d", "e"]
    assert marked(engine) == ["a", "b", "c", "d", "e"]


def test_a_send_that_gives_up_on_metadata_keeps_what_was_acknowledged_before_it(engine):
    add_rows(engine, ["a", "b", "c"])
    producer = ScriptedProducer(lambda key: "raise" if key == "b" else "ack")
    relay = OutboxRelay(engine, producer, SETTINGS, log_ends=kept_everything)

    with pytest.raises(KafkaTimeoutError):
        relay.publish_pending()
    assert marked(engine) == ["a"]


def test_stop_is_prompt_while_the_broker_never_answers(engine):
    add_rows(engine, ["a", "b"])
    relay = OutboxRelay(
        engine, ScriptedProducer(lambda key: "hang"), SETTINGS, log_ends=kept_everything
    )
    thread = threading.Thread(target=relay.run)
    thread.start()
    time.sleep(0.3)
    asked = time.monotonic()
    relay.stop()
    thread.join(timeout=STOP_GRACE_SECONDS + 5)
    assert not thread.is_alive()
    assert time.monotonic() - asked < STOP_GRACE_SECONDS + 1
    assert marked(engine) == []  # sent, never acknowledged: never marked


def test_run_backs_off_while_no_producer_can_be_made_then_publishes_everything(engine, caplog):
    add_rows(engine, ["a", "b", "c"])
    attempts: list[datetime] = []

    def new_producer() -> ScriptedProducer:
        attempts.append(datetime.now(UTC))
        if len(attempts) < 3:
            raise KafkaTimeoutError("Unable to bootstrap")  # the broker is down
        return ScriptedProducer(lambda key: "ack")

    down = ScriptedProducer(lambda key: "fail")
    relay = OutboxRelay(engine, down, SETTINGS, new_producer=new_producer, log_ends=kept_everything)
    caplog.set_level(logging.WARNING, logger="linkway.relay")
    thread = threading.Thread(target=relay.run)
    thread.start()
    deadline = time.monotonic() + 10
    while len(marked(engine)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    relay.stop()
    thread.join(timeout=5)

    assert marked(engine) == ["a", "b", "c"]
    failures = [r for r in caplog.records if "publish failed" in r.getMessage()]
    assert len(failures) == 3  # the failed batch, then two producers that could not connect
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[-1] > gaps[0]  # backing off


def publish_history(engine: Engine, keys: list[str]) -> None:
    add_rows(engine, keys)
    with Session(engine) as session:
        for row in session.exec(select(OutboxRow)):
            row.published_at = datetime.now(UTC)
            session.add(row)
        session.commit()


def test_a_broker_that_lost_its_log_gets_the_history_again_before_anything_new(engine):
    publish_history(engine, ["a1", "b1", "a2"])
    add_rows(engine, ["b2", "a3"])
    producer = ScriptedProducer(lambda key: "ack")
    relay = OutboxRelay(engine, producer, SETTINGS, log_ends=lambda topics: {})

    assert relay.publish_pending() == 2
    assert producer.sent == ["a1", "b1", "a2", "b2", "a3"]
    assert producer.replayed == ["a1", "b1", "a2"]


def test_a_broker_that_kept_its_log_gets_only_what_is_new(engine):
    publish_history(engine, ["a1", "b1"])
    add_rows(engine, ["a2"])
    producer = ScriptedProducer(lambda key: "ack")
    relay = OutboxRelay(engine, producer, SETTINGS, log_ends=kept_everything)

    assert relay.publish_pending() == 1
    assert producer.sent == ["a2"]


def test_the_log_marks_tell_a_lost_log_from_the_embedded_brokers_log_ends() -> None:
    from messaging.logmarks import first_offsets, lost_topics

    # A batch of five at offsets 10-14 on partition 0, and one at 3 on partition 1.
    marked = first_offsets([("t", 0, 12), ("t", 0, 10), ("t", 0, 14), ("t", 1, 3)])
    assert marked == {("t", 0): 10, ("t", 1): 3}
    # Apache Kafka reports the true ends; Tansu one past its last batch's first offset.
    assert lost_topics(["t"], marked, {"t": {0: 15, 1: 4}}) == set()
    assert lost_topics(["t"], marked, {"t": {0: 11, 1: 4}}) == set()
    # A broker that restarted empty, lost one partition, or does not have the topic.
    assert lost_topics(["t"], marked, {"t": {0: 0, 1: 0}}) == {"t"}
    assert lost_topics(["t"], marked, {"t": {0: 11, 1: 0}}) == {"t"}
    assert lost_topics(["t"], marked, {}) == {"t"}
    # A topic published before the marks existed: lost only if the broker holds nothing.
    assert lost_topics(["old"], {}, {"old": {0: 1, 1: 0}}) == set()
    assert lost_topics(["old"], {}, {"old": {0: 0}}) == {"old"}
