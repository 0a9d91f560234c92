"""The providers consumer's batches on the real database and Temporal dev server: a polled
batch is screened in one transaction and its facts recorded in one more, after its lanes
and before its offsets commit; what that window between the signals and the record
costs when something goes wrong there.

The batches are handed to the consumer's own runner (``BatchRunner.settle``) as Kafka
records, without a broker: what a redelivery is (the same records again, to a consumer
started afresh) is spelled out here rather than waited for through a group join. The
consumer has an engine of its own on the test's database, so the listeners count its
transactions, not the workflow activity's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.exceptions import NackMessage
from sqlalchemy import event
from sqlalchemy.engine import Engine

from events import topics
from events.envelope import CloudEvent
from inbound.provider_facts import ProviderFacts
from infra.db import make_engine
from infra.settings import Settings
from messaging.consumer import Backoff, BatchRunner, Inbound
from messaging.deadletters import DeadLetters
from pathway.state import CaseState
from tests.integration.test_provider_inbound import (
    FRIENDS,
    WALKS,
    attendance,
    eventually,
    processed_ids,
    referral_id_of,
    signals,
    state_of,
    supported_referral,
)
from tests.workflow.helpers import make_worker
from workers import providers
from workers.providers import ProviderBatch, ProviderInbound

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


class Letters(DeadLetters):
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish(self, message: Inbound, reason: str) -> None:
        self.sent.append(reason)


def batch(events: Sequence[CloudEvent]) -> Any:
    """A poll of the attendance topic holding ``events``, as the runner receives it."""
    records = tuple(
        ConsumerRecord(
            topics.PROVIDER_ATTENDANCE, 0, offset, 0, 0, e.key, e.to_bytes(), None, 0, 0, ()
        )
        for offset, e in enumerate(events)
    )
    return SimpleNamespace(raw_message=records)


def settle(handler: ProviderInbound, events: Sequence[CloudEvent]) -> Any:
    runner = BatchRunner(
        "providers",
        handler,
        Letters(),
        Backoff(0.0, 0.0),
        providers.CONCURRENCY,
        providers.referral_of,
    )
    return runner.settle(batch(events))


@pytest.fixture
def consumer_engine(settings: Settings, engine: Engine) -> Iterator[Engine]:
    """The consumer's own engine on the test's database (created by ``engine``)."""
    own = make_engine(settings.sqlalchemy_url)
    yield own
    own.dispose()


@contextmanager
def counting(engine: Engine) -> Iterator[dict[str, int]]:
    """Counts the engine's commits and its INSERT statements into processed_events (an
    insert of many rows in one statement counts once)."""
    seen = {"commits": 0, "record_inserts": 0}

    def commit(_conn: Any) -> None:
        seen["commits"] += 1

    def execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PROCESSED_EVENTS"):
            seen["record_inserts"] += 1

    event.listen(engine, "commit", commit)
    event.listen(engine, "before_cursor_execute", execute)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", commit)
        event.remove(engine, "before_cursor_execute", execute)


async def attended(handle: Any, sessions: int) -> CaseState:
    """The referral's state once it counts ``sessions`` attended (the signals are applied)."""

    async def reached() -> bool:
        return (await state_of(handle)).episode.attended_sessions >= sessions

    await eventually(reached)
    return await state_of(handle)


async def test_a_batch_is_screened_in_one_transaction_and_recorded_in_one_more(
    dev_env, engine, consumer_engine, task_queue
):
    async with make_worker(dev_env.client, engine, task_queue):
        one, one_handoffs = await supported_referral(dev_env.client, task_queue)
        two, two_handoffs = await supported_referral(dev_env.client, task_queue)
        reports = [
            attendance(referral_id_of(handle), handoffs[provider_id], provider_id, day=day)
            for handle, handoffs in ((one, one_handoffs), (two, two_handoffs))
            for provider_id in (WALKS, FRIENDS)
            for day in (0, 1)
        ]
        handler = ProviderInbound(dev_env.client, consumer_engine)
        with counting(consumer_engine) as seen:
            await settle(handler, reports)
        states = [await attended(one, 4), await attended(two, 4)]

    assert seen == {"commits": 2, "record_inserts": 1}, "one screen and one record per batch"
    assert processed_ids(engine) == {r.id for r in reports}
    assert [s.episode.attended_sessions for s in states] == [4, 4]


async def test_a_crash_before_the_record_redelivers_the_batch_and_applies_nothing_twice(
    dev_env, engine, consumer_engine, task_queue
):
    """The process dies after the batch's signals, before its record commits: simulated
    by the record's INSERT failing, so nothing is recorded and the offsets do not commit.
    A consumer started afresh gets the same records, signals them all again, and the
    workflow ignores each fact whose event id it has seen."""
    async with make_worker(dev_env.client, engine, task_queue):
        handle, handoffs = await supported_referral(dev_env.client, task_queue)
        rid = referral_id_of(handle)
        reports = [attendance(rid, handoffs[WALKS], WALKS, day=day) for day in (0, 1, 2)]

        def crash(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO PROCESSED_EVENTS"):
                raise SystemError("the consumer's process died here")

        event.listen(consumer_engine, "before_cursor_execute", crash)
        try:
            with pytest.raises(NackMessage):
                await settle(ProviderInbound(dev_env.client, consumer_engine), reports)
        finally:
            event.remove(consumer_engine, "before_cursor_execute", crash)
        assert processed_ids(engine) == set()
        first = await attended(handle, 3)

        await settle(ProviderInbound(dev_env.client, consumer_engine), reports)
        # A later fact to the same workflow, applied only after the redelivered ones.
        later = attendance(rid, handoffs[FRIENDS], FRIENDS, day=0)
        await settle(ProviderInbound(dev_env.client, consumer_engine), [later])
        last = await attended(handle, 4)
        sent = await signals(handle, "attendance_reported")

    assert sent == 7, "the batch's three facts were signalled twice"
    assert processed_ids(engine) == {r.id for r in [*reports, later]}
    assert last.episode.handoffs[handoffs[WALKS]].attended == 3
    assert last.episode.attended_sessions == 4
    assert last.version == first.version + 1, "only the later fact changed the referral"


async def test_a_fact_the_http_door_records_meanwhile_loses_none_of_the_batchs_records(
    dev_env, engine, consumer_engine, task_queue
):
    """After the batch's screen, one of its facts comes through the HTTP door too and is
    recorded first: the batch signals it again (the workflow ignores it), its record of
    that fact fails on the primary key, and every other record still commits."""
    async with make_worker(dev_env.client, engine, task_queue):
        handle, handoffs = await supported_referral(dev_env.client, task_queue)
        rid = referral_id_of(handle)
        reports = [
            attendance(rid, handoffs[provider_id], provider_id, day=day)
            for provider_id in (WALKS, FRIENDS)
            for day in (0, 1)
        ]
        twice = reports[1]
        door = ProviderFacts(dev_env.client, engine)  # the HTTP API's, on its own engine

        class Meanwhile(ProviderInbound):
            async def prepare(self, messages: Sequence[Inbound]) -> ProviderBatch:
                screened = await super().prepare(messages)
                fact, data = self.read(messages[1])
                assert await door.submit(fact, data)
                return screened

        with counting(consumer_engine) as seen:
            await settle(Meanwhile(dev_env.client, consumer_engine), reports)
        state = await attended(handle, 4)
        applied = await signals(handle, "attendance_reported")

    assert processed_ids(engine) == {r.id for r in reports}
    assert seen["record_inserts"] > 1, "the batch's record fell back to one per fact"
    assert applied == 5, "the fact came by both doors"
    assert state.episode.attended_sessions == 4
    assert twice.id in state.seen_events


async def test_a_failed_lane_keeps_the_records_of_the_facts_that_succeeded(
    dev_env, engine, consumer_engine, task_queue
):
    """One referral's workflow cannot take its signal (it was terminated): that lane
    fails and the batch comes again, but the facts the other lane applied are recorded,
    so the redelivery does not signal them again."""
    async with make_worker(dev_env.client, engine, task_queue):
        gone, gone_handoffs = await supported_referral(dev_env.client, task_queue)
        kept, kept_handoffs = await supported_referral(dev_env.client, task_queue)
        await gone.terminate("test: its signals fail")
        lost = attendance(referral_id_of(gone), gone_handoffs[WALKS], WALKS, day=0)
        applied = [
            attendance(referral_id_of(kept), kept_handoffs[WALKS], WALKS, day=day) for day in (0, 1)
        ]
        with pytest.raises(NackMessage):
            await settle(ProviderInbound(dev_env.client, consumer_engine), [lost, *applied])
        await attended(kept, 2)

    assert processed_ids(engine) == {r.id for r in applied}
