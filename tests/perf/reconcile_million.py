"""Benchmark (not a test): reconciliation of N synthetic outcome events against reading
and parsing the same events from the same store, in the same run (issue 11: reconcile at
>= 0.5x the read rate, memory bounded).

    python -m tests.perf.reconcile_million [--events 1000000] [--dir /tmp/linkway-bench]

The store is filled directly (setup, not timed): people stating engagement, connection,
wellbeing at review and sustained at follow-up, in that order, person after person, and a
ledger holding exactly the claims those events earn, chained as the engine appends them,
with one reversal per thousand claims so the replay takes reversals back too. The caps
fill early (the contract total is about 6,000 full episodes), so most claims are capped
entries, as at national scale. Two floors are timed: reading and parsing the envelopes
(``event_store.consumed_in_batches``) and that plus parsing each event's data into its outcome
model (what reconciliation must do before deciding anything). Prints rates, ratios and
peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from events.envelope import new_event
from events.examples import LINKWAY_SOURCE, example
from events.outcome import OUTCOME_TYPES, OutcomeEvent, SustainedReviewed
from infra.db import make_engine
from infra.settings import PaymentSettings
from ops.tables import create_tables
from payments import event_store, store
from payments.base import outcome_of
from payments.claims import ClaimKey, claim_id
from payments.engine import PaymentEngine
from payments.entries import claim_entry, current_claims, transition_entry
from payments.ledger import EntryBody, LedgerEntry, append
from payments.reconcile import expected_claims

START = datetime(2026, 4, 2, 9, tzinfo=UTC)
PARTNERS = ("north-wellbeing", "south-wellbeing")
BATCH = 10_000


def outcomes(count: int) -> Iterator[tuple[str, OutcomeEvent]]:
    """Deterministic (event id, outcome) in consumed order, generated lazily."""
    templates = [example(t) for t in OUTCOME_TYPES]
    for n in range(count):
        person, kind = divmod(n, len(templates))
        template = templates[kind]
        assert isinstance(template, OutcomeEvent)
        at = START + timedelta(days=(person % 900) + 30 * (kind + 1), seconds=person % 86_400)
        update: dict[str, Any] = {
            "referral_id": f"bench-{person:07d}",
            "partner_id": PARTNERS[person % 2],
            "occurred_at": at,
        }
        if isinstance(template, SustainedReviewed):  # the review's measure, as the pathway says
            update["pairs"] = [p.model_copy(update={"review": p.followup}) for p in template.pairs]
        yield str(uuid.UUID(int=n)), template.model_copy(update=update)


def fill(engine: Any, count: int, book: Any) -> int:
    """The event store and a ledger that agrees with it; returns the ledger's length."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    with Session(engine) as session:
        for event_id, data in outcomes(count):
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
            if len(rows) == BATCH:
                session.execute(insert(event_store.OutcomeEventRow), rows)
                rows = []
        if rows:
            session.execute(insert(event_store.OutcomeEventRow), rows)
        session.commit()
    decisions = expected_claims(outcomes(count), book)
    prev: LedgerEntry | None = None
    entries: list[dict[str, Any]] = []
    written = 0
    with Session(engine) as session:
        for decision in decisions.values():
            prev = append(prev, claim_entry(decision, "payments-engine", now))
            entries.append(_row(prev))
            if len(entries) >= BATCH:
                session.execute(insert(store.LedgerRow), entries)
                written += len(entries)
                entries = []
        # Some claims that earned are disputed and reversed afterwards: the replay must take
        # them back (a thousandth of the claims, at most 50).
        claimed = [d for d in decisions.values() if d.status == "claimed"][::1000][:50]
        for decision in claimed:
            assert decision.key is not None
            made = claim_entry(decision, "payments-engine", now)
            so_far: list[EntryBody] = [made]
            for to in ("disputed", "reversed"):
                body = transition_entry(current_claims(so_far)[decision.key], to, f"cm-{to}", now)
                so_far.append(body)
                prev = append(prev, body)
                entries.append(_row(prev))
        session.execute(insert(store.LedgerRow), entries)
        written += len(entries)
        session.commit()
    return written


def _row(entry: LedgerEntry) -> dict[str, Any]:
    fields = entry.model_dump()
    fields["evidence_event_ids"] = json.dumps(list(entry.evidence_event_ids))
    fields["measurement_ids"] = json.dumps(list(entry.measurement_ids))
    fields["shares"] = json.dumps([list(s) for s in entry.shares])
    fields["claim_id"] = claim_id(
        ClaimKey(entry.contract_id, entry.referral_id, entry.episode, entry.metric)
    )
    return fields


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", default="/tmp/linkway-bench")
    args = parser.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    db = work / "payments.db"
    db.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db}")
    create_tables(engine)
    payments = PaymentEngine.from_settings(engine, PaymentSettings(), work)
    t0 = time.perf_counter()
    ledger_len = fill(engine, args.events, payments.book)
    print(
        f"setup: {args.events:,} events, {ledger_len:,} ledger entries"
        f" in {time.perf_counter() - t0:.0f}s"
    )

    def read_envelopes() -> float:
        t = time.perf_counter()
        with Session(engine) as session:
            n = sum(1 for _ in event_store.consumed_in_batches(session, OUTCOME_TYPES))
        assert n == args.events
        return n / (time.perf_counter() - t)

    def read_and_parse() -> float:
        t = time.perf_counter()
        with Session(engine) as session:
            n = sum(
                1
                for env in event_store.consumed_in_batches(session, OUTCOME_TYPES)
                if outcome_of(env)
            )
        assert n == args.events
        return n / (time.perf_counter() - t)

    def reconcile() -> float:
        t = time.perf_counter()
        result = payments.reconcile()
        rate = result.outcome_events / (time.perf_counter() - t)
        assert result.outcome_events == args.events
        print(
            f"  reconcile ok={result.ok} claims={result.ledger_claims:,}"
            f" differences={len(result.discrepancies)}"
        )
        return rate

    envelopes, parsed, rec = read_envelopes(), read_and_parse(), reconcile()
    print(f"read+parse envelopes     {envelopes:10,.0f} events/s")
    print(f"read+parse outcome data  {parsed:10,.0f} events/s")
    print(f"reconcile                {rec:10,.0f} events/s")
    print(f"ratio vs envelopes {rec / envelopes:.2f}x; vs outcome data {rec / parsed:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB (includes the setup's expected claims)")
    engine.dispose()


if __name__ == "__main__":
    main()
