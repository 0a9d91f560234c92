"""The publishing lease, on SQLite and PostgreSQL: one holder at a time, a lapsed lease
taken with a new fencing token, a deposed holder that can neither renew nor mark, a
paused holder that sends nothing once its local deadline passed, and two relays over one
outbox of which only the holder publishes."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from infra.db import transaction
from infra.settings import Settings
from messaging.lease import Lease
from messaging.relay import Deposed, OutboxRelay
from tests.unit.test_relay import ScriptedProducer, add_rows, kept_everything, marked

pytestmark = pytest.mark.both_databases

SETTINGS = Settings(
    relay_batch_size=50, relay_poll_seconds=0.01, relay_lease_seconds=30, relay_renew_seconds=1
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lapse(engine: Engine) -> None:
    """The holder's lease runs out (as after a kill or a pause), by the database's clock."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE leases SET expires_at = 0"))


def test_one_holder_at_a_time_and_each_new_holder_gets_a_larger_token(engine: Engine) -> None:
    first, second = Lease(engine, duration=30), Lease(engine, duration=30)
    assert first.acquire() and first.token == 1
    assert not second.acquire() and second.token is None
    assert first.acquire() and first.token == 1  # a renewal keeps the token
    state = first.state()
    assert state is not None and state.holder == first.holder and state.expires_in > 25

    lapse(engine)
    assert second.acquire() and second.token == 2
    # The first holder is deposed: it cannot renew, and it knows it.
    assert not first.acquire() and first.token is None and not first.holds()


def test_a_released_lease_is_taken_at_once(engine: Engine) -> None:
    first, second = Lease(engine, duration=30), Lease(engine, duration=30)
    assert first.acquire()
    first.release()
    assert second.acquire() and second.token == 2


def test_a_deposed_holder_cannot_fence_a_transaction(engine: Engine) -> None:
    first, second = Lease(engine, duration=30), Lease(engine, duration=30)
    assert first.acquire()
    with transaction(engine) as session:
        assert first.fence(session)
    lapse(engine)
    assert second.acquire()
    with Session(engine) as session:
        assert not first.fence(session)


def test_after_a_pause_longer_than_the_lease_the_holder_no_longer_holds_it(engine: Engine) -> None:
    clock = Clock()
    lease = Lease(engine, duration=5, clock=clock)
    assert lease.acquire() and lease.holds()
    clock.now += 4.9
    assert lease.holds()
    clock.now += 0.2  # SIGSTOP, SIGCONT: the monotonic clock ran on
    assert not lease.holds()


def test_a_standby_relay_publishes_nothing_and_says_so(engine: Engine, caplog) -> None:
    add_rows(engine, ["a", "b"])
    active_producer = ScriptedProducer(lambda key: "ack")
    standby_producer = ScriptedProducer(lambda key: "ack")
    active = OutboxRelay(engine, active_producer, SETTINGS, log_ends=kept_everything)
    standby = OutboxRelay(engine, standby_producer, SETTINGS, log_ends=kept_everything)
    assert active.lead()
    with caplog.at_level(logging.WARNING, logger="linkway.relay"):
        assert not standby.lead()
        with pytest.raises(Deposed):
            standby.publish_pending()
    assert standby.role == "standby" and not standby.active
    assert "relay: standby: another relay holds the publishing lease" in caplog.text
    assert standby_producer.sent == [] and marked(engine) == []

    assert active.publish_pending() == 2
    assert active_producer.sent == ["a", "b"] and active.active


def test_a_relay_deposed_mid_batch_marks_nothing_and_its_successor_sends_in_order(
    engine: Engine, caplog
) -> None:
    add_rows(engine, ["a", "b", "c"])
    successor_producer = ScriptedProducer(lambda key: "ack")
    successor = OutboxRelay(engine, successor_producer, SETTINGS, log_ends=kept_everything)

    def paused_after_sending(key: str) -> str:
        if key == "c":  # the batch is on the wire; the relay stalls; the lease lapses
            lapse(engine)
            assert successor.lead()
        return "ack"

    stale = OutboxRelay(
        engine, ScriptedProducer(paused_after_sending), SETTINGS, log_ends=kept_everything
    )
    with caplog.at_level(logging.WARNING, logger="linkway.relay"), pytest.raises(Deposed):
        stale.publish_pending()
    assert marked(engine) == []  # fenced: the deposed relay marked nothing
    assert "relay: deposed" in caplog.text
    # The at-least-once window: the successor sends the unmarked batch again, in order.
    assert successor.publish_pending() == 3
    assert successor_producer.sent == ["a", "b", "c"]
    assert marked(engine) == ["a", "b", "c"]
    # And the stale relay, asked again, sends nothing.
    add_rows(engine, ["d"])
    with pytest.raises(Deposed):
        stale.publish_pending()
    assert successor.publish_pending() == 1


def test_renewing_more_often_than_half_the_lease_is_required() -> None:
    producer = ScriptedProducer(lambda key: "ack")
    with pytest.raises(ValueError, match="LINKWAY_RELAY_RENEW_SECONDS"):
        OutboxRelay(
            None,  # type: ignore[arg-type]
            producer,
            Settings(relay_lease_seconds=4, relay_renew_seconds=3),
        )


def test_a_later_batch_replaces_each_partitions_log_mark(engine: Engine) -> None:
    """``logmarks.record`` upserts one row per partition (one statement for the batch)."""
    from messaging import logmarks

    with transaction(engine) as session:
        logmarks.record(session, [("t", 0, 12), ("t", 0, 10), ("t", 1, 3)])
    with transaction(engine) as session:
        logmarks.record(session, [("t", 0, 20), ("u", 0, 0)])
        logmarks.record(session, [])
    with transaction(engine) as session:
        assert logmarks.marks(session) == {("t", 0): 20, ("t", 1): 3, ("u", 0): 0}
