"""P6 relay: events per second from outbox commit to broker acknowledgement, against a
raw idempotent producer (``acks=all``) sending the same records (topic, key, value,
headers) and waiting for every acknowledgement.

The rows live in a database of their own, so the relay that runs behind the other
benchmarks never sees them; each Linkway round stages them afresh and an
``OutboxRelay`` publishes until none is left. The lag row comes from P1: every event
its Linkway rounds raised, from the activity's commit to the relay marking it
published, with the relay at its default poll interval.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from kafka import KafkaProducer
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bench.core import Deadline, Result, interleaved, percentile, summarise
from bench.env import Env
from events.examples import example_event
from events.referral import LinkWorkerAssigned, ReferralAccepted, ReferralAssessed
from infra.db import make_engine, transaction
from messaging import outbox
from messaging.outbox import OutboxRow
from messaging.relay import OutboxRelay, make_producer, producer_config, record_headers
from ops.tables import create_tables

TYPES = (ReferralAccepted.TYPE, LinkWorkerAssigned.TYPE, ReferralAssessed.TYPE)


def stage(engine: Engine, count: int, tag: str) -> list[OutboxRow]:
    """``count`` outbox rows, as the pathway's activity writes them: three kinds of
    referral event over count/3 referrals."""
    with transaction(engine) as session:
        before = session.exec(select(func.coalesce(func.max(OutboxRow.seq), 0))).one()
        for i in range(count):
            template = example_event(TYPES[i % len(TYPES)])
            subject = f"bench-{tag}-{i // len(TYPES)}"
            envelope = template.model_copy(update={"id": uuid.uuid4().hex, "subject": subject})
            outbox.add(session, envelope, "linkway.referrals")
    with transaction(engine) as session:
        stmt = select(OutboxRow).where(col(OutboxRow.seq) > before).order_by(col(OutboxRow.seq))
        return list(session.exec(stmt))


def relay_round(engine: Engine, relay: OutboxRelay, count: int) -> float:
    stage(engine, count, uuid.uuid4().hex[:8])
    deadline = Deadline(120, "the relay to publish its round")
    t0 = time.perf_counter()
    done = 0
    while done < count:
        done += relay.publish_pending()
        deadline.check()
    return count / (time.perf_counter() - t0)


def raw_round(engine: Engine, producer: KafkaProducer, count: int) -> float:
    # The same records, read the same way; the send loop is all the floor does.
    rows = stage(engine, count, uuid.uuid4().hex[:8])
    t0 = time.perf_counter()
    futures = [
        producer.send(
            r.topic, value=r.payload.encode(), key=r.key.encode(), headers=record_headers(r)
        )
        for r in rows
    ]
    producer.flush(timeout=60)
    for f in futures:
        f.get(timeout=0)  # raises if any was not acknowledged
    return count / (time.perf_counter() - t0)


async def run(env: Env, lags: list[float]) -> list[Result]:
    rounds, count = (1, 100) if env.quick else (3, 2000)
    # Two databases: the raw rounds mark nothing, and the relay must not find their rows.
    engine = make_engine(f"sqlite:///{env.run_dir / 'relay.db'}")
    raw_engine = make_engine(f"sqlite:///{env.run_dir / 'raw.db'}")
    create_tables(engine)
    create_tables(raw_engine)
    relay = OutboxRelay(engine, make_producer(env.settings), env.settings)
    raw = KafkaProducer(**producer_config(env.settings))
    try:
        # Warm both: metadata for the topic, a producer id, the first connection.
        await asyncio.to_thread(relay_round, engine, relay, 10)
        await asyncio.to_thread(raw_round, raw_engine, raw, 10)

        async def linkway(_: int) -> float:
            return await asyncio.to_thread(relay_round, engine, relay, count)

        async def floor(_: int) -> float:
            return await asyncio.to_thread(raw_round, raw_engine, raw, count)

        found = await interleaved(rounds, linkway, floor)
    finally:
        raw.close(timeout=5)
        if relay.producer is not None:
            relay.producer.close(timeout=5)
        engine.dispose()
        raw_engine.dispose()
    lw, fl, ratio = summarise(found)
    p99 = percentile(lags, 99)
    extra: dict[str, Any] = {"lag_p50_s": percentile(lags, 50), "lag_events": len(lags)}
    return [
        Result(
            id="P6",
            name="relay throughput",
            unit="events/s",
            linkway=lw,
            floor=fl,
            ratio=ratio,
            better="higher",
            goal=">= 0.8x",
            met=ratio >= 0.8,
            scale=f"{rounds} rounds x {count} events, batch {env.settings.relay_batch_size}",
            rounds=found,
        ),
        Result(
            id="P6",
            name="commit-to-publish lag p99 under P1",
            unit="s",
            linkway=p99,
            floor=None,
            ratio=None,
            better="lower",
            goal="<= 1 s",
            met=p99 <= 1.0 if lags else None,
            scale=f"{len(lags)} events, poll {env.settings.relay_poll_seconds} s",
            extra=extra,
        ),
    ]
