"""Provider responses and attendance, from Kafka to the referral's workflow, on the real
Tansu broker and Temporal dev server: applied once, only from the provider the handoff
was made to, and in any order.

Each test gets its own topics (a unique prefix) and consumer group, so tests sharing the
session's broker never read each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle

from events import topics
from events.envelope import CloudEvent, new_event
from infra.settings import Settings
from messaging import provisioning
from messaging.consumer import Backoff, ProcessedEvent
from messaging.deadletters import REASON_HEADER
from pathway import commands as cmd
from pathway.state import CaseState
from tests.conftest import temporal_address
from tests.workflow.helpers import make_worker, start_referral, to_supported
from workers import providers
from workflows.referral import ReferralWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

WALKS, FRIENDS = "walking-group", "befriending"


# Helpers shared with test_dead_letters.py ----------------------------------------------


@dataclass
class Lane:
    """One test's private topics and consumer group on the shared broker."""

    settings: Settings
    prefix: str

    @property
    def responses(self) -> str:
        return self.prefix + topics.PROVIDER_RESPONSES

    @property
    def attendance(self) -> str:
        return self.prefix + topics.PROVIDER_ATTENDANCE

    @property
    def group_id(self) -> str:
        return self.prefix + "providers"

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap


@pytest.fixture
def lane(settings: Settings, broker: str, dev_env: Any) -> Lane:
    settings = settings.model_copy(
        update={
            "kafka_bootstrap": broker,
            "kafka_partitions": 3,
            "temporal_address": temporal_address(dev_env),
        }
    )
    prefix = f"t{uuid.uuid4().hex[:8]}."
    inbound = [prefix + t for t in topics.INBOUND]
    provisioning.provision(
        settings, extra=[*inbound, *(topics.dead_letter_topic(t) for t in inbound)]
    )
    return Lane(settings, prefix)


@contextlib.asynccontextmanager
async def consuming(
    lane: Lane, client: Client, engine: Engine, backoff: Backoff | None = None
) -> AsyncIterator[None]:
    """The provider consumer, started (group joined) for the duration of the block."""
    broker = providers.build(
        lane.settings,
        client,
        engine,
        topic_prefix=lane.prefix,
        group_id=lane.group_id,
        backoff=backoff,
    )
    await broker.start()
    try:
        yield
    finally:
        await broker.stop()


async def supported_referral(
    client: Client, task_queue: str, provider_ids: tuple[str, ...] = (WALKS, FRIENDS)
) -> tuple[WorkflowHandle[Any, Any], dict[str, str]]:
    """A referral in ``supported`` with one handoff per provider; returns the handle and
    each provider's handoff id. The caller runs the worker."""
    handle = await start_referral(client, task_queue)
    planned = await to_supported(
        handle, [cmd.PrescriptionInput(provider_id=p, service_id="main") for p in provider_ids]
    )
    assert planned.stage == "supported"
    state = await state_of(handle)
    return handle, {h.provider_id: h.handoff_id for h in state.episode.handoffs.values()}


async def state_of(handle: WorkflowHandle[Any, Any]) -> CaseState:
    return await handle.query(ReferralWorkflow.get_state)


def referral_id_of(handle: WorkflowHandle[Any, Any]) -> str:
    return handle.id.removeprefix("referral-")


def provider_event(
    type_: str,
    referral_id: str,
    handoff_id: str,
    provider_id: str,
    source: str | None = None,
    **data: Any,
) -> CloudEvent:
    return new_event(
        type_,
        referral_id,
        {
            "handoff_id": handoff_id,
            "referral_id": referral_id,
            "provider_id": provider_id,
            "occurred_at": datetime.now(UTC),
            **data,
        },
        source or f"urn:linkway:provider:{provider_id}",
    )


def response(referral_id: str, handoff_id: str, provider_id: str, **data: Any) -> CloudEvent:
    data.setdefault("decision", "accept")
    return provider_event(
        "linkway.provider.response.v1", referral_id, handoff_id, provider_id, **data
    )


def session_date(day: int) -> date:
    """A plausible session date for a handoff requested today (the consumer refuses one
    before the handoff or in the future, beyond a day either way): yesterday, today or
    tomorrow, by ``day``. Distinct days modulo 3 are distinct sessions."""
    return datetime.now(UTC).date() + timedelta(days=day % 3 - 1)


def attendance(
    referral_id: str, handoff_id: str, provider_id: str, day: int = 1, **data: Any
) -> CloudEvent:
    data.setdefault("status", "attended")
    data.setdefault("session_date", session_date(day))
    return provider_event(
        "linkway.provider.attendance.v1", referral_id, handoff_id, provider_id, **data
    )


# An event, or raw (key, value) or (key, value, headers) for what no valid event can be.
Message = CloudEvent | tuple[bytes | None, bytes] | tuple[bytes | None, bytes, list[Any]]


def publish(bootstrap: str, topic: str, messages: list[Message]) -> list[tuple[int, int]]:
    """Send in order as a partner would (acks=all, idempotence on); returns each message's
    (partition, offset) as the broker acknowledged it."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    try:
        futures = []
        for message in messages:
            if isinstance(message, CloudEvent):
                message = (message.key, message.to_bytes())
            key, value, *headers = message
            futures.append(
                producer.send(topic, key=key, value=value, headers=headers[0] if headers else [])
            )
        producer.flush(timeout=10)
        return [(m.partition, m.offset) for m in (f.get(timeout=10) for f in futures)]
    finally:
        producer.close(timeout=5)


def ends_of(sent: list[tuple[int, int]]) -> dict[int, int]:
    """Each partition's end offset after ``sent``. Taken from the acknowledgements because
    Tansu's ListOffsets(latest) reports the last batch's base offset + 1, short of the end
    when a batch holds more than one record."""
    ends: dict[int, int] = {}
    for partition, offset in sent:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


def committed(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group_id)
    finally:
        admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in offsets.get(group_id, {}).items()
        if tp.topic == topic and meta.offset >= 0
    }


def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record on a topic, by manual assignment (no group join wait)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        return list(consumer)
    finally:
        consumer.close()


def header(record: ConsumerRecord, name: str) -> str:
    return dict(record.headers)[name].decode()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.1)


async def offsets_reach(lane: Lane, topic: str, ends: dict[int, int]) -> None:
    async def done() -> bool:
        found = await asyncio.to_thread(committed, lane.bootstrap, lane.group_id, topic)
        return all(found.get(p, 0) >= end for p, end in ends.items())

    await eventually(done)


async def deliver(lane: Lane, responses: list[Message], reports: list[Message]) -> None:
    """Publish to both inbound topics and wait until the consumer has committed them all."""
    response_ends = ends_of(publish(lane.bootstrap, lane.responses, responses))
    attendance_ends = ends_of(publish(lane.bootstrap, lane.attendance, reports))
    await offsets_reach(lane, lane.responses, response_ends)
    await offsets_reach(lane, lane.attendance, attendance_ends)


def processed_ids(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(ProcessedEvent.event_id)))


async def signals(handle: WorkflowHandle[Any, Any], name: str) -> int:
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
        and e.workflow_execution_signaled_event_attributes.signal_name == name
    )


def dead_letters(lane: Lane) -> list[ConsumerRecord]:
    return [
        record
        for topic in (lane.responses, lane.attendance)
        for record in read_all(lane.bootstrap, topics.dead_letter_topic(topic))
    ]


# Tests ----------------------------------------------------------------------------------


async def test_acceptance_and_attendance_change_the_referral_and_a_duplicate_applies_once(
    dev_env, engine, task_queue, lane
):
    async with make_worker(dev_env.client, engine, task_queue):
        handle, handoffs = await supported_referral(dev_env.client, task_queue)
        rid = referral_id_of(handle)
        accepted = response(rid, handoffs[WALKS], WALKS)
        waitlisted = response(
            rid, handoffs[FRIENDS], FRIENDS, decision="waitlist", waitlist_band="under_1_month"
        )
        session = attendance(rid, handoffs[WALKS], WALKS, day=3)
        async with consuming(lane, dev_env.client, engine):
            await deliver(lane, responses=[accepted, waitlisted], reports=[session, session])
        state = await state_of(handle)
        attendance_signals = await signals(handle, "attendance_reported")

    walks, friends = (
        state.episode.handoffs[handoffs[WALKS]],
        state.episode.handoffs[handoffs[FRIENDS]],
    )
    assert (walks.status, walks.attended) == ("in-progress", 1)
    assert (friends.status, friends.waitlist_band) == ("on-hold", "under_1_month")
    assert state.episode.attended_sessions == 1
    assert attendance_signals == 1, "the consumer signalled the duplicate"
    assert processed_ids(engine) == {accepted.id, waitlisted.id, session.id}
    assert dead_letters(lane) == []


async def test_event_for_another_providers_handoff_is_dead_lettered_and_changes_nothing(
    dev_env, engine, task_queue, lane
):
    async with make_worker(dev_env.client, engine, task_queue):
        handle, handoffs = await supported_referral(dev_env.client, task_queue)
        other, other_handoffs = await supported_referral(dev_env.client, task_queue, (FRIENDS,))
        rid = referral_id_of(handle)
        before = await state_of(handle)
        bad = {
            "not made to provider befriending": response(rid, handoffs[WALKS], FRIENDS),
            "source must be": response(
                rid, handoffs[WALKS], WALKS, source="urn:linkway:provider:befriending"
            ),
            "not part of referral": response(rid, other_handoffs[FRIENDS], FRIENDS),
            "unknown handoff": response(rid, uuid.uuid4().hex, WALKS),
        }
        good = response(rid, handoffs[FRIENDS], FRIENDS, decision="reject", reason_code="full")
        async with consuming(lane, dev_env.client, engine):
            await deliver(lane, responses=[*bad.values(), good], reports=[])
        after = await state_of(handle)
        other_after = await state_of(other)
        response_signals = await signals(handle, "provider_responded")

    dead = read_all(lane.bootstrap, topics.dead_letter_topic(lane.responses))
    assert sorted(r.value for r in dead) == sorted(e.to_bytes() for e in bad.values())
    by_value = {r.value: header(r, REASON_HEADER) for r in dead}
    for expected, event in bad.items():
        reason = by_value[event.to_bytes()]
        assert expected in reason
        assert reason.startswith(("unauthorised: ", "unknown handoff"))
    assert response_signals == 1
    assert after.episode.handoffs[handoffs[WALKS]] == before.episode.handoffs[handoffs[WALKS]]
    friends = after.episode.handoffs[handoffs[FRIENDS]]
    assert (friends.status, friends.reason_code) == ("rejected", "full")
    assert processed_ids(engine) == {good.id}
    assert other_after.episode.handoffs[other_handoffs[FRIENDS]].status == "requested"
    assert other_after.episode.attended_sessions == 0


async def test_attendance_before_acceptance_gives_the_in_order_state(
    dev_env, engine, task_queue, lane
):
    async with make_worker(dev_env.client, engine, task_queue):
        in_order, in_order_handoffs = await supported_referral(dev_env.client, task_queue)
        reversed_, reversed_handoffs = await supported_referral(dev_env.client, task_queue)

        def facts(handle: WorkflowHandle[Any, Any], handoffs: dict[str, str]) -> list[CloudEvent]:
            rid, walks = referral_id_of(handle), handoffs[WALKS]
            return [
                response(rid, walks, WALKS),
                attendance(rid, walks, WALKS, day=2),
                attendance(rid, walks, WALKS, day=9, status="did_not_attend"),
            ]

        # Responses and attendance travel on two topics, so only the order of publishing
        # in two phases decides which a referral hears first.
        in_order_facts = facts(in_order, in_order_handoffs)
        reversed_facts = facts(reversed_, reversed_handoffs)
        async with consuming(lane, dev_env.client, engine):
            await deliver(lane, responses=in_order_facts[:1], reports=reversed_facts[1:])
            reversed_mid = await state_of(reversed_)
            await deliver(lane, responses=reversed_facts[:1], reports=in_order_facts[1:])
        outcome = [await state_of(in_order), await state_of(reversed_)]

    assert reversed_mid.episode.handoffs[reversed_handoffs[WALKS]].status == "in-progress"
    assert summary(outcome[0], in_order_handoffs) == summary(outcome[1], reversed_handoffs)
    assert summary(outcome[0], in_order_handoffs)["walks"] == ("in-progress", None, None, 1)


def summary(state: CaseState, handoffs: dict[str, str]) -> dict[str, Any]:
    """What the provider facts decide, without the ids and times that differ per referral."""
    ep = state.episode

    def of(handoff_id: str) -> tuple[Any, ...]:
        h = ep.handoffs[handoff_id]
        return (h.status, h.reason_code, h.waitlist_band, h.attended)

    return {
        "walks": of(handoffs[WALKS]),
        "friends": of(handoffs[FRIENDS]),
        "attended": ep.attended_sessions,
        "sessions": [(s.session_date, s.status) for s in ep.recent_sessions],
        "disengaged": ep.disengaged,
        "overdue": sorted(a.split(":")[0] for a in ep.overdue),
        "deadlines": sorted(k.split(":")[0] for k in ep.deadlines),
    }
