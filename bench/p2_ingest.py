"""P2 partner ingest: attendance events per second from Kafka to applied workflow state
through Linkway's providers consumer (validate, deduplicate, authorise against the
handoff, signal, record), and end-to-end latency at 15 events/s.

Throughput: each Linkway round produces a burst of attendance reports for referrals in
the supported stage and times until every one is recorded as processed and its state
version is in the read model (the workflow applied and persisted it). The floor is the
slower of two raw legs, per the issue: an aiokafka consumer reading as many records
from the same topic, and as many signals to the same number of floor workflows, sent as
the consumer sends them: each workflow's in order, one at a time, and up to
``providers.CONCURRENCY`` workflows at once.

Latency: reports paced at 15/s; Linkway's figure is from the send to the consumer's
processed-event record (signal accepted by Temporal); the floor's, from the send to a
raw aiokafka-consumer-plus-signal loop's signal returning, on a topic of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer
from kafka.admin import NewTopic
from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.client import Client

from activities.readmodel import ReferralRow
from bench.core import Deadline, Result, interleaved, percentile, summarise
from bench.drive import PROVIDER, concurrently, handoff_of, new_referral
from bench.drive import to_supported as drive_to_supported
from bench.env import Env
from bench.floor import start_floor
from bench.floor_workflow import FloorWorkflow
from events import topics
from events.envelope import new_event
from events.provider import AttendanceReported
from infra.kafka import admin_client
from messaging.consumer import ProcessedEvent
from workers import providers

STATUSES = ("attended", "did_not_attend")
RATE = 15.0  # events/s: three times the 2023 national average
RAW_TOPIC = "bench.raw-attendance"


class Reports:
    """Attendance reports for a set of handoffs. Linkway refuses a session date before the
    handoff or in the future (a day either way), and the handoffs are made today, so the
    reports cycle over yesterday, today and tomorrow and alternate attended and did not
    attend from one cycle to the next: every report corrects the last one for its date,
    so the workflow applies each (a new state version) as it would a new session."""

    def __init__(self, handoffs: list[tuple[str, str]]) -> None:
        self.handoffs = handoffs  # (referral id, handoff id)
        self.today = datetime.now(UTC).date()
        self._next: Iterator[int] = itertools.count()

    def next(self) -> tuple[str, str, bytes]:
        n = next(self._next)
        referral_id, handoff_id = self.handoffs[n % len(self.handoffs)]
        data = AttendanceReported(
            handoff_id=handoff_id,
            referral_id=referral_id,
            provider_id=PROVIDER,
            session_date=self.today + timedelta(days=(n // len(self.handoffs)) % 3 - 1),
            status=STATUSES[(n // (3 * len(self.handoffs))) % 2],
            occurred_at=datetime.now(UTC),
        )
        event_id = uuid.uuid4().hex
        envelope = new_event(
            data.TYPE,
            referral_id,
            data.model_dump(mode="json"),
            f"urn:linkway:provider:{PROVIDER}",
            event_id=event_id,
        )
        return event_id, referral_id, envelope.model_dump_json().encode()


def _applied(env: Env) -> tuple[int, int]:
    """Reports recorded as processed, and state versions the read model holds (each
    applied report adds one)."""
    with Session(env.engine) as session:
        done = session.exec(select(func.count()).select_from(ProcessedEvent)).one()
        versions = session.exec(select(func.coalesce(func.sum(ReferralRow.version), 0))).one()
    return done, versions


async def _until_applied(env: Env, done: int, versions: int, seconds: float) -> None:
    deadline = Deadline(seconds, "the providers consumer to apply the reports")
    while True:
        now = await asyncio.to_thread(_applied, env)
        if now[0] >= done and now[1] >= versions:
            return
        deadline.check()
        await asyncio.sleep(0.02)


async def _burst(env: Env, producer: KafkaProducer, reports: Reports, count: int) -> float:
    done, versions = await asyncio.to_thread(_applied, env)
    t0 = time.perf_counter()
    for _ in range(count):
        _, key, value = reports.next()
        producer.send(topics.PROVIDER_ATTENDANCE, value=value, key=key.encode())
    producer.flush(timeout=30)
    await _until_applied(env, done + count, versions + count, 120)
    return count / (time.perf_counter() - t0)


async def _raw_consume(env: Env, count: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=env.settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(topics.PROVIDER_ATTENDANCE, p)
            for p in consumer.partitions_for_topic(topics.PROVIDER_ATTENDANCE) or ()
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline, got = Deadline(60, "the raw consumer"), 0
        t0 = time.perf_counter()
        while got < count:
            batch = await consumer.getmany(timeout_ms=200)
            got += sum(len(records) for records in batch.values())
            deadline.check()
        return count / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def _raw_signals(raw: Client, workflows: list[str], count: int) -> float:
    """As the consumer sends them: each workflow's signals one after the other, up to
    ``providers.CONCURRENCY`` workflows at once."""
    lanes: dict[str, list[int]] = {}
    for n in range(count):
        lanes.setdefault(workflows[n % len(workflows)], []).append(n)
    gate = asyncio.Semaphore(providers.CONCURRENCY)

    async def lane(workflow_id: str, numbers: list[int]) -> None:
        async with gate:
            handle = raw.get_workflow_handle(workflow_id)
            for n in numbers:
                await handle.signal(FloorWorkflow.poke, n)

    t0 = time.perf_counter()
    await asyncio.gather(*(lane(wid, numbers) for wid, numbers in lanes.items()))
    return count / (time.perf_counter() - t0)


async def _paced(
    producer: KafkaProducer, topic: str, make: Iterator[tuple[str, str, bytes]], count: int
) -> dict[str, datetime]:
    """Send ``count`` records at RATE per second; returns each one's send time."""
    sent: dict[str, datetime] = {}
    t0 = time.perf_counter()
    for n in range(count):
        await asyncio.sleep(max(0.0, t0 + n / RATE - time.perf_counter()))
        event_id, key, value = next(make)
        sent[event_id] = datetime.now(UTC).replace(tzinfo=None)
        producer.send(topic, value=value, key=key.encode())
    producer.flush(timeout=30)
    return sent


async def _linkway_latency(
    env: Env, producer: KafkaProducer, reports: Reports, count: int
) -> list[float]:
    done, versions = await asyncio.to_thread(_applied, env)
    sent = await _paced(producer, topics.PROVIDER_ATTENDANCE, iter(reports.next, None), count)
    await _until_applied(env, done + count, versions + count, 60)

    def read() -> list[float]:
        with Session(env.engine) as session:
            rows = session.exec(
                select(ProcessedEvent.event_id, ProcessedEvent.processed_at).where(
                    col(ProcessedEvent.event_id).in_(list(sent))
                )
            ).all()
        return [(at.replace(tzinfo=None) - sent[eid]).total_seconds() for eid, at in rows]

    return await asyncio.to_thread(read)


async def _raw_latency(
    env: Env, producer: KafkaProducer, workflows: list[str], count: int
) -> list[float]:
    """The thinnest pipeline: consume, parse, signal; one record at a time."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=env.settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    latencies: list[float] = []
    try:
        parts = [
            TopicPartition(RAW_TOPIC, p) for p in consumer.partitions_for_topic(RAW_TOPIC) or ()
        ]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for p in parts:  # resolve the end offsets now, before anything is sent
            await consumer.position(p)

        async def consume() -> None:
            deadline = Deadline(60, "the raw pipeline")
            while len(latencies) < count:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    for record in records:
                        message = json.loads(record.value)
                        handle = env.raw.get_workflow_handle(message["workflow"])
                        await handle.signal(FloorWorkflow.poke, 0)
                        sent = datetime.fromisoformat(message["sent"])
                        latencies.append(
                            (datetime.now(UTC).replace(tzinfo=None) - sent).total_seconds()
                        )
                deadline.check()

        def make() -> Iterator[tuple[str, str, bytes]]:
            for n in itertools.count():
                wid = workflows[n % len(workflows)]
                at = datetime.now(UTC).replace(tzinfo=None).isoformat()
                yield uuid.uuid4().hex, wid, json.dumps({"workflow": wid, "sent": at}).encode()

        task = asyncio.create_task(consume())
        await _paced(producer, RAW_TOPIC, make(), count)
        await asyncio.wait_for(task, 60)
    finally:
        await consumer.stop()
    return latencies


def _raw_topic(env: Env) -> None:
    admin = admin_client(env.settings)
    try:
        if RAW_TOPIC not in admin.list_topics():
            admin.create_topics([NewTopic(RAW_TOPIC, env.settings.kafka_partitions, 1)])
    finally:
        admin.close()


async def run(env: Env) -> list[Result]:
    quick = env.quick
    referrals, rounds, burst, paced = (2, 1, 10, 10) if quick else (10, 3, 100, 200)
    handles = []

    async def one() -> None:
        handle = await new_referral(env.client)
        await drive_to_supported(handle)
        handles.append(handle)

    await concurrently(referrals, 10, one)
    handoffs = [
        (h.id.removeprefix("referral-"), await asyncio.to_thread(handoff_of, env.engine, h))
        for h in handles
    ]
    workflows = [await start_floor(env.raw) for _ in range(referrals)]
    await asyncio.to_thread(_raw_topic, env)
    reports = Reports(handoffs)
    producer = KafkaProducer(
        bootstrap_servers=env.settings.kafka_bootstrap, acks="all", linger_ms=0
    )
    broker = providers.build(env.settings, env.client, env.engine)
    await broker.start()
    # faststream logs two INFO lines per record to stdout, burying the table: a few
    # microseconds against the tens of milliseconds a record takes here.
    logging.getLogger("faststream.access.kafka").setLevel(logging.WARNING)
    try:
        await _burst(env, producer, reports, 1)  # warm: the group has joined, the path is hot
        legs: list[dict[str, float]] = []

        async def linkway(_: int) -> float:
            return await _burst(env, producer, reports, burst)

        async def floor(_: int) -> float:
            consume = await _raw_consume(env, burst)
            signal = await _raw_signals(env.raw, workflows, burst)
            legs.append({"consume": consume, "signal": signal})
            return min(consume, signal)

        found = await interleaved(rounds, linkway, floor)
        lw_lat = await _linkway_latency(env, producer, reports, paced)
        raw_lat = await _raw_latency(env, producer, workflows, paced)
    finally:
        await broker.stop()
        producer.close(timeout=5)
    lw, fl, ratio = summarise(found)
    lw99, raw99 = percentile(lw_lat, 99), percentile(raw_lat, 99)
    return [
        Result(
            id="P2",
            name="partner ingest throughput",
            unit="events/s",
            linkway=lw,
            floor=fl,
            ratio=ratio,
            better="higher",
            goal=">= 0.8x",
            met=ratio >= 0.8,
            scale=f"{rounds} rounds x {burst} events, {referrals} referrals",
            rounds=found,
            extra={"floor_legs": legs},
        ),
        Result(
            id="P2",
            name=f"ingest latency p99 at {RATE:.0f}/s",
            unit="s",
            linkway=lw99,
            floor=raw99,
            ratio=lw99 / raw99 if raw99 else None,
            better="lower",
            goal="p99 <= 1 s",
            met=lw99 <= 1.0,
            scale=f"{paced} events paced at {RATE:.0f}/s",
            extra={"linkway_p50_s": percentile(lw_lat, 50), "floor_p50_s": percentile(raw_lat, 50)},
        ),
    ]
