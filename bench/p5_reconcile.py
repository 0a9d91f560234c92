"""P5 reconciliation: outcome events reconciled per second (``PaymentEngine.reconcile``:
read the consumed outcome events, recompute the expected claims with the rate card's
rules, compare with the ledger to the penny) against reading and parsing the same
events from the same store (``payments.event_store.consumed``, the read reconcile starts with).

The store is filled directly, not through the consumer: four outcome facts per referral
(engagement, connection, wellbeing at review, sustained) spread over the contract's
three years, so caps bite as they would (the per-partner monthly cap and the contract
total both fill), and a ledger holding exactly the claims those events earn, chained
and hashed as the engine appends them, so reconciliation finds no difference.

The full size is the issue's million events: ``LINKWAY_BENCH_P5_EVENTS=1000000`` (and
``LINKWAY_BENCH_P5_ROUNDS``, default 3). Memory: the bench process holds the generated
events to fill the store and the floor holds every parsed event at once, so its peak
says nothing of reconciliation's; reconciliation's own peak RSS is measured apart, in a
fresh process that only reconciles the same store (``reconcile_peak_rss_mib``).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.core import Result, interleaved, summarise
from bench.env import Env
from events.envelope import new_event
from events.examples import LINKWAY_SOURCE, example
from events.outcome import OutcomeEvent
from infra.db import make_engine
from ops.tables import create_tables
from payments import event_store, store
from payments.claims import claim_id
from payments.engine import PaymentEngine, PaymentSettings
from payments.entries import claim_entry
from payments.ledger import LedgerEntry, append
from payments.reconcile import expected_claims

KINDS = (
    "linkway.outcome.engagement.v1",
    "linkway.outcome.connection.v1",
    "linkway.outcome.wellbeing_reviewed.v1",
    "linkway.outcome.sustained_reviewed.v1",
)
START = datetime(2026, 4, 2, 9, tzinfo=UTC)
SPAN_DAYS = 3 * 365 - 10  # inside the contract's three years
PARTNERS = ("north-wellbeing", "south-wellbeing")


def outcomes(count: int) -> list[tuple[str, OutcomeEvent]]:
    """(event id, outcome) in consumed order: referrals open through the contract, each
    stating its four facts over the following months."""
    made: list[tuple[datetime, str, OutcomeEvent]] = []
    people = max(count // len(KINDS), 1)
    for n in range(count):
        person, kind = divmod(n, len(KINDS))
        opened = START + timedelta(days=SPAN_DAYS * (person % people) / people * 0.8)
        at = opened + timedelta(days=30 * (kind + 1) + kind * 60)
        template = example(KINDS[kind])
        assert isinstance(template, OutcomeEvent)
        data = template.model_copy(
            update={
                "referral_id": f"bench-{person:07d}",
                "partner_id": PARTNERS[person % len(PARTNERS)],
                "occurred_at": at,
            }
        )
        made.append((at, uuid.uuid4().hex, data))
    made.sort(key=lambda m: m[0])
    return [(event_id, data) for _, event_id, data in made]


def fill(engine: Engine, events: list[tuple[str, OutcomeEvent]], book: Any) -> None:
    """The event store and a ledger that agrees with it (setup, not timed)."""
    rows = []
    now = datetime.now(UTC)
    for event_id, data in events:
        env = new_event(
            data.TYPE,
            data.referral_id,
            data.model_dump(mode="json"),
            LINKWAY_SOURCE,
            event_id=event_id,
            time=data.occurred_at,
        )
        rows.append(
            {
                "event_id": event_id,
                "type": data.TYPE,
                "referral_id": data.referral_id,
                "episode": data.episode,
                "occurred_at": data.occurred_at,
                "consumed_at": now,
                "envelope": env.model_dump_json(),
            }
        )
    entries: list[dict[str, Any]] = []
    prev: LedgerEntry | None = None
    for decision in expected_claims(events, book).values():
        prev = append(prev, claim_entry(decision, "payments-engine", now))
        fields = prev.model_dump()
        fields["evidence_event_ids"] = json.dumps(list(prev.evidence_event_ids))
        fields["measurement_ids"] = json.dumps(list(prev.measurement_ids))
        fields["shares"] = json.dumps([list(share) for share in prev.shares])
        fields["claim_id"] = claim_id(decision.key)  # type: ignore[arg-type]
        entries.append(fields)
    with Session(engine) as session:
        session.execute(insert(event_store.OutcomeEventRow), rows)
        if entries:
            session.execute(insert(store.LedgerRow), entries)
        session.commit()


async def run(env: Env) -> list[Result]:
    rounds, count = (1, 400) if env.quick else (3, 30_000)
    count = int(os.environ.get("LINKWAY_BENCH_P5_EVENTS", count))
    rounds = int(os.environ.get("LINKWAY_BENCH_P5_ROUNDS", rounds))
    engine = make_engine(f"sqlite:///{env.run_dir / 'payments.db'}")
    create_tables(engine)
    payments = PaymentEngine.from_settings(engine, PaymentSettings(), env.run_dir)
    events = await asyncio.to_thread(outcomes, count)
    await asyncio.to_thread(fill, engine, events, payments.book)
    del events  # the store has them now
    checked: dict[str, Any] = {}

    def reconcile() -> float:
        t0 = time.perf_counter()
        found = payments.reconcile()
        elapsed = time.perf_counter() - t0
        checked.update(ok=found.ok, events=found.outcome_events, claims=found.ledger_claims)
        return count / elapsed

    def read() -> float:
        t0 = time.perf_counter()
        with Session(engine) as session:
            n = len(event_store.consumed(session, types=KINDS))
        assert n == count
        return count / (time.perf_counter() - t0)

    async def linkway(_: int) -> float:
        return await asyncio.to_thread(reconcile)

    async def floor(_: int) -> float:
        return await asyncio.to_thread(read)

    try:
        found = await interleaved(rounds, linkway, floor)
    finally:
        engine.dispose()
    # The bench process's peak (kernel: KiB): reconciliation streams events and ledger in
    # batches, so this should not grow with the event count beyond the claims it holds.
    checked["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    checked["reconcile_peak_rss_mib"] = await asyncio.to_thread(reconcile_peak, env)
    lw, fl, ratio = summarise(found)
    scaled = "" if count >= 1_000_000 else " (scaled down from 1,000,000: see docs)"
    return [
        Result(
            id="P5",
            name="reconciliation",
            unit="events/s",
            linkway=lw,
            floor=fl,
            ratio=ratio,
            better="higher",
            goal=">= 0.5x",
            met=ratio >= 0.5 and bool(checked.get("ok")),
            scale=f"{rounds} rounds x {count:,} events{scaled}",
            rounds=found,
            extra=checked,
        )
    ]


def reconcile_peak(env: Env) -> int:
    """Reconciliation's own peak RSS (MiB): one reconcile of the store in a new process.
    Read from the kernel's high-water mark of the new process's memory (``VmHWM``, KiB):
    ``getrusage``'s ``ru_maxrss`` survives ``exec``, so it would report this process's."""
    code = (
        "import sys; from pathlib import Path; from infra.db import make_engine; "
        "from payments.engine import PaymentEngine, PaymentSettings; "
        "d = Path(sys.argv[1]); e = make_engine(f'sqlite:///{d / \"payments.db\"}'); "
        "assert PaymentEngine.from_settings(e, PaymentSettings(), d).reconcile().ok; "
        "print(Path('/proc/self/status').read_text().split('VmHWM:')[1].split()[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(env.run_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return round(int(done.stdout.split()[-1]) / 1024)
