"""The broker stops while referrals progress, and a new one starts on the same port: the
relay backs off, marks no row the broker did not acknowledge, and publishes every row once
the broker is back, in per-referral order; a consumer that deduplicates by event id then
applies each event once, even with the history replayed on top.

Tansu keeps its topics in memory, so the new broker starts empty: what the relay published
before the outage is read from the first broker before it stops. The relay sees that the
new broker lost that history and sends it again before anything new, so a partner reading
the new broker from the start sees each referral's events in the order they happened.

The relay's producer gets short timeouts here, so that the outage exercises
failed sends, producers that cannot connect and back-off within seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from activities.readmodel import ReferralRow
from events import topics
from events.envelope import new_event
from infra.settings import Settings
from messaging import provisioning
from messaging.outbox import OutboxRow
from messaging.relay import OutboxRelay, make_producer, producer_config
from messaging.replay import rebuild_referrals, republish
from messaging.timeline import TimelineRow
from ops.devstack import ChildProcess, start_broker
from pathway import commands as cmd
from tests.conftest import free_port
from tests.workflow.helpers import WEMWBS_LOW, command, make_worker, start_referral, wemwbs
from workflows import WORKFLOW_ID_PREFIX
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.integration

REFERRALS = 4
WATCHED = (topics.REFERRALS, topics.OUTCOMES)
log = logging.getLogger("test.outage")


def quick_producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        **producer_config(settings)
        | {
            "request_timeout_ms": 1500,
            "delivery_timeout_ms": 3000,
            "max_block_ms": 2000,
            "bootstrap_timeout_ms": 2000,
            "reconnect_backoff_max_ms": 500,
        }
    )


class Collector:
    """Reads ``WATCHED`` from the beginning, in a thread, until stopped: (topic, key, id) in
    partition order, so one referral's events are in the order the broker holds them."""

    def __init__(self, bootstrap: str) -> None:
        self.records: list[tuple[str, str, str]] = []
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        partitions = [
            TopicPartition(topic, p)
            for topic in WATCHED
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for batch in self._consumer.poll(timeout_ms=100).values():
                for m in batch:
                    self.records.append((m.topic, m.key.decode(), json.loads(m.value)["id"]))

    def ids(self) -> set[str]:
        return {event_id for _, _, event_id in list(self.records)}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()


def outbox(engine: Engine) -> list[OutboxRow]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxRow).order_by(col(OutboxRow.seq))))


def unpublished(engine: Engine) -> list[OutboxRow]:
    return [row for row in outbox(engine) if row.published_at is None]


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


async def drive(handles: list[Any], *steps: tuple[Any, Any]) -> None:
    """Each referral takes the steps in order; the referrals move concurrently."""

    async def one(handle: Any) -> None:
        for update, make in steps:
            await handle.execute_update(update, make())

    await asyncio.gather(*(one(h) for h in handles))


def referral_id_of(handle: Any) -> str:
    return str(handle.id).removeprefix(WORKFLOW_ID_PREFIX)


def failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        "publish failed" in r.getMessage() for r in caplog.records if r.name == "linkway.relay"
    )


async def test_every_row_reaches_the_new_broker_in_order_and_is_applied_once(
    dev_env, engine, task_queue, tmp_path: Path, caplog
):
    caplog.set_level(logging.WARNING, logger="linkway.relay")
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    settings = Settings(kafka_bootstrap=bootstrap, kafka_partitions=3, relay_poll_seconds=0.05)
    brokers: list[ChildProcess] = [start_broker("127.0.0.1", port, tmp_path / "broker-1")]
    relay: OutboxRelay | None = None
    relay_thread: threading.Thread | None = None
    try:
        provisioning.provision(settings)
        relay = OutboxRelay(
            engine,
            quick_producer(settings),
            settings,
            new_producer=lambda: quick_producer(settings),
        )
        relay_thread = threading.Thread(target=relay.run, daemon=True)
        relay_thread.start()
        before = Collector(bootstrap)

        async with make_worker(dev_env.client, engine, task_queue):
            handles = list(
                await asyncio.gather(
                    *(start_referral(dev_env.client, task_queue) for _ in range(REFERRALS))
                )
            )
            await drive(
                handles,
                (
                    ReferralWorkflow.accept_referral,
                    lambda: command(cmd.AcceptReferral, link_worker_id="lw-1"),
                ),
                (
                    ReferralWorkflow.record_contact_attempt,
                    lambda: command(cmd.RecordContactAttempt, outcome="no_answer"),
                ),
            )
            # Quiet for a moment: all published, and all read back from the first broker.
            await until(
                lambda: (
                    not unpublished(engine) and before.ids() >= {r.event_id for r in outbox(engine)}
                ),
                timeout=15,
                what="the first broker to hold every row",
            )
            before.stop()
            published_before = {r.event_id for r in outbox(engine)}
            brokers[0].stop()
            down_at = time.monotonic()

            # The outage: referrals keep moving; their rows wait in the outbox.
            await drive(
                handles,
                (
                    ReferralWorkflow.record_contact_attempt,
                    lambda: command(cmd.RecordContactAttempt, outcome="contacted"),
                ),
                (
                    ReferralWorkflow.record_assessment,
                    lambda: command(
                        cmd.RecordAssessment, support_level="1", measures=[wemwbs(WEMWBS_LOW)]
                    ),
                ),
            )
            await until(
                lambda: failures(caplog) >= 3, timeout=20, what="the relay to fail and back off"
            )
            waiting = unpublished(engine)
            assert {r.event_id for r in waiting} == {
                r.event_id for r in outbox(engine)
            } - published_before
            assert waiting, "the outage produced no rows"

            brokers.append(start_broker("127.0.0.1", port, tmp_path / "broker-2"))
            provisioning.provision(settings)  # the new broker is empty: no topics, no messages
            up_at = time.monotonic()
            after = Collector(bootstrap)
            await drive(
                handles,
                (
                    ReferralWorkflow.assign_link_worker,
                    lambda: command(cmd.AssignLinkWorker, link_worker_id="lw-2"),
                ),
            )
            await until(
                lambda: (
                    not unpublished(engine) and after.ids() >= {r.event_id for r in outbox(engine)}
                ),
                timeout=30,
                what="every row to reach the second broker",
            )
            drained_in = time.monotonic() - up_at
        after.stop()
        asked = time.monotonic()
        relay.stop()
        relay_thread.join(timeout=15)
        stopped_in = time.monotonic() - asked
        assert not relay_thread.is_alive(), "the relay did not stop"

        rows = outbox(engine)
        assert all(r.published_at is not None for r in rows)
        # What the first broker held is exactly what was published before it stopped; the
        # second holds everything: the history the relay sent again, and all that is new.
        assert before.ids() == published_before
        assert after.ids() == {r.event_id for r in rows}
        # Per referral and topic, the first sighting of each event on each broker follows
        # the outbox order: on the new one, no new event overtook the lost history.
        for referral_id in map(referral_id_of, handles):
            for topic in WATCHED:
                expected = [r.event_id for r in rows if (r.key, r.topic) == (referral_id, topic)]
                for seen in (before.records, after.records):
                    firsts = dict.fromkeys(i for t, k, i in seen if (k, t) == (referral_id, topic))
                    assert list(firsts) == expected[: len(firsts)]
                firsts = dict.fromkeys(
                    i for t, k, i in after.records if (k, t) == (referral_id, topic)
                )
                assert list(firsts) == expected
        duplicates = len(after.records) - len(after.ids())
        log.info(
            "outage %.1f s, %d rows waited, %d relay failures; drained %.1f s after the restart; "
            "%d duplicates; relay stopped in %.2f s",
            up_at - down_at,
            len(waiting),
            failures(caplog),
            drained_in,
            duplicates,
            stopped_in,
        )

        # An operator who replays the topic anyway (as the recovery once said to) changes
        # nothing for a consumer that deduplicates by id: every event applies exactly once.
        lifecycle = [r for r in rows if r.topic == topics.REFERRALS]
        replayer = KafkaProducer(**producer_config(settings))
        try:
            assert republish(engine, replayer, topic=topics.REFERRALS) == len(lifecycle)
        finally:
            replayer.close(timeout=5)
        assert await asyncio.to_thread(rebuild_referrals, bootstrap, engine) == len(lifecycle)
        assert await asyncio.to_thread(rebuild_referrals, bootstrap, engine) == 0
        with Session(engine) as session:
            for handle in handles:
                referral_id = referral_id_of(handle)
                mine = [r for r in lifecycle if r.key == referral_id]
                row = session.get(TimelineRow, referral_id)
                current = session.get(ReferralRow, referral_id)
                assert row is not None and current is not None
                assert row.event_count == len(mine)
                assert (row.stage, row.link_worker_id) == (current.stage, "lw-2")
                assert row.last_event_id == mine[-1].event_id
    finally:
        if relay is not None:
            relay.stop()
        if relay_thread is not None:
            relay_thread.join(timeout=15)
        for broker in brokers:
            broker.stop()


def add_rows(engine: Engine, keys: list[str]) -> None:
    with Session(engine) as session:
        for key in keys:
            event = new_event("linkway.test.thing.v1", key, {}, "urn:linkway:test")
            session.add(
                OutboxRow(
                    event_id=event.id,
                    topic=topics.REFERRALS,
                    key=key,
                    type=event.type,
                    payload=event.model_dump_json(),
                )
            )
        session.commit()


def test_relay_replaces_a_producer_the_new_broker_does_not_know(engine, tmp_path: Path, caplog):
    """With the production timeouts the outage is shorter than the delivery timeout, so the
    sends are still pending when the new broker comes: it knows nothing of the producer's
    id, kafka-python cannot recover it, and only a new producer gets the rows through."""
    caplog.set_level(logging.WARNING, logger="linkway.relay")
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    settings = Settings(kafka_bootstrap=bootstrap, kafka_partitions=3, relay_poll_seconds=0.05)
    brokers = [start_broker("127.0.0.1", port, tmp_path / "broker-1")]
    relay: OutboxRelay | None = None
    thread: threading.Thread | None = None
    try:
        provisioning.provision(settings)
        relay = OutboxRelay(engine, make_producer(settings), settings)
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        keys = ["r-1", "r-2", "r-3"]
        add_rows(engine, keys)
        wait_for(lambda: not unpublished(engine), 10, "the first rows to be published")
        brokers[0].stop()

        add_rows(engine, keys * 3)
        time.sleep(1.5)  # the relay sends them; they wait in its producer
        assert len(unpublished(engine)) == 9
        brokers.append(start_broker("127.0.0.1", port, tmp_path / "broker-2"))
        provisioning.provision(settings)
        up_at = time.monotonic()
        after = Collector(bootstrap)
        wait_for(lambda: not unpublished(engine), 30, "every row to be published")
        drained_in = time.monotonic() - up_at
        # The three rows the first broker held come again, ahead of the nine new ones.
        wait_for(lambda: len(after.ids()) == 12, 10, "the second broker to hold the rows")
        after.stop()

        rows = outbox(engine)
        assert {r.event_id for r in rows} == after.ids()
        for key in keys:
            firsts = dict.fromkeys(i for _, k, i in after.records if k == key)
            assert list(firsts) == [r.event_id for r in rows if r.key == key]
        assert failures(caplog) >= 1
        log.info("new producer: drained 9 rows %.1f s after the restart", drained_in)
    finally:
        if relay is not None:
            relay.stop()
        if thread is not None:
            thread.join(timeout=15)
        for broker in brokers:
            broker.stop()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def test_recovery_from_a_broker_that_lost_its_log_keeps_each_referrals_order(
    engine, tmp_path: Path
):
    """The broker restarts without its log while nothing is in flight; new events follow;
    the operator then replays the topic, as the recovery procedure once said to. A partner
    reading the new broker from the start must see each referral's events in order: the
    relay sent the lost history again before the new events, so the replay only repeats."""
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    settings = Settings(kafka_bootstrap=bootstrap, kafka_partitions=3, relay_poll_seconds=0.05)
    brokers = [start_broker("127.0.0.1", port, tmp_path / "broker-1")]
    relay: OutboxRelay | None = None
    thread: threading.Thread | None = None
    keys = [f"r-{i}" for i in range(6)]
    try:
        provisioning.provision(settings)
        relay = OutboxRelay(
            engine,
            quick_producer(settings),
            settings,
            new_producer=lambda: quick_producer(settings),
        )
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        add_rows(engine, keys * 3)
        wait_for(lambda: not unpublished(engine), 15, "the history to be published")

        brokers[0].stop()
        brokers.append(start_broker("127.0.0.1", port, tmp_path / "broker-2"))
        provisioning.provision(settings)
        add_rows(engine, keys * 2)
        wait_for(lambda: not unpublished(engine), 30, "the new events to be published")
        replayer = KafkaProducer(**producer_config(settings))
        try:
            republish(engine, replayer, topic=topics.REFERRALS)
        finally:
            replayer.close(timeout=5)

        rows = outbox(engine)
        partner = Collector(bootstrap)
        wait_for(lambda: partner.ids() == {r.event_id for r in rows}, 15, "every event")
        partner.stop()
        backwards = 0
        for key in keys:
            firsts = list(dict.fromkeys(i for _, k, i in partner.records if k == key))
            expected = [r.event_id for r in rows if r.key == key]
            backwards += sum(firsts.index(e) != n for n, e in enumerate(expected))
        assert backwards == 0, f"{backwards} of {len(rows)} first deliveries out of order"
    finally:
        if relay is not None:
            relay.stop()
        if thread is not None:
            thread.join(timeout=15)
        for broker in brokers:
            broker.stop()
