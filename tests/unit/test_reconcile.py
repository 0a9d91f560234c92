"""Reconciliation (expected claims recomputed from outcome events, diffed against the
ledger) and statements for finance."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

from events.outcome import OutcomeEvent
from payments.claims import ClaimKey
from payments.entries import claim_entry, current_claims, transition_entry
from payments.ledger import EntryBody, LedgerEntry, append, verify
from payments.ratebook import RateCardBook
from payments.reconcile import expected_claims, reconcile
from payments.rules import decide_in_book
from payments.statements import HEADER, statements, to_csv
from tests.unit.test_payment_rules import (
    CONTRACT,
    card,
    connection,
    engagement,
    ons4,
    pair,
    reviewed,
    wemwbs_pair,
)

T0 = datetime(2026, 6, 1, 10, tzinfo=UTC)
SOUTH = "south-wellbeing"


def book() -> RateCardBook:
    """Two versions; a small monthly partner cap so that some claims are capped."""
    cap = {"caps.per_partner_per_month_pence": 200_000}
    later = {
        "version": "2027.1",
        "effective_from": date(2027, 4, 1),
        "metrics.M1.price_pence": 26_000,
    }
    return RateCardBook([card(**cap), card(**cap, **later)])


def history() -> list[tuple[str, OutcomeEvent]]:
    """Outcome events for 12 people in two partners and two rate-card years."""
    events: list[OutcomeEvent] = []
    for n in range(12):
        who: dict[str, Any] = {
            "referral": f"r-{n}",
            "partner": SOUTH if n % 3 == 0 else "north-wellbeing",
        }
        start = T0 + timedelta(days=n) if n < 8 else datetime(2027, 5, 1, 10, tzinfo=UTC)
        events.append(engagement(at=start, **who))
        events.append(connection(sessions=2 + n % 3, at=start + timedelta(days=20), **who))
        improved = wemwbs_pair(3) if n % 4 else pair("ONS4", ons4(5), ons4(6))
        events.append(reviewed(improved, at=start + timedelta(days=90), **who))
        if n % 2:
            events.append(
                reviewed(wemwbs_pair(5), sustained=True, at=start + timedelta(days=180), **who)
            )
    # r-1 comes back a year later: a new episode earns M1 again
    events.append(engagement(referral="r-1", episode=2, at=T0 + timedelta(days=400)))
    return [(f"evt-{i}", e) for i, e in enumerate(events)]


def run_engine(outcomes: list[tuple[str, OutcomeEvent]], rates: RateCardBook) -> list[EntryBody]:
    """What the live engine writes: one entry per claimed or capped decision."""
    bodies: list[EntryBody] = []
    for event_id, outcome in outcomes:
        for contract in rates.contracts_for(outcome.partner_id):
            claims = current_claims(bodies).values()
            made = decide_in_book(rates, contract, event_id, outcome, claims)
            if made.recorded:
                bodies.append(claim_entry(made, "payments-engine", outcome.occurred_at))
    return bodies


def chained(bodies: list[EntryBody]) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    for b in bodies:
        entries.append(append(entries[-1] if entries else None, b))
    return entries


def progress(bodies: list[EntryBody], moves: dict[ClaimKey, list[str]]) -> list[EntryBody]:
    """People's lifecycle decisions, which reconciliation must not report."""
    out = list(bodies)
    for key, path in moves.items():
        for to in path:
            claim = current_claims(out)[key]
            out.append(transition_entry(claim, to, f"cm-{to}", T0 + timedelta(days=500)))
    return out


def key(referral: str, metric: str, episode: int = 1) -> ClaimKey:
    return ClaimKey(CONTRACT, referral, episode, metric)


def test_the_history_exercises_claims_caps_both_versions_and_re_entry() -> None:
    expected = expected_claims(history(), book())
    statuses = {d.status for d in expected.values()}
    versions = {d.rate_card_version for d in expected.values()}
    assert statuses == {"claimed", "capped"} and versions == {"2026.1", "2027.1"}
    assert expected[key("r-1", "M1", 2)].status == "claimed"
    assert key("r-0", "M3") not in expected  # ONS4 5 -> 6 stays in its band
    assert key("r-0", "M2") not in expected  # two sessions; the rate card needs three


def test_an_honest_ledger_with_lifecycle_moves_reconciles_exactly() -> None:
    outcomes, rates = history(), book()
    bodies = progress(
        run_engine(outcomes, rates),
        {
            key("r-1", "M1"): ["validated", "approved", "paid"],
            key("r-2", "M1"): ["disputed", "reversed"],
            key("r-5", "M3"): ["validated", "disputed", "upheld", "approved"],
        },
    )
    assert verify(chained(bodies)).ok
    assert reconcile(outcomes, rates, current_claims(chained(bodies))) == []


def test_reconciliation_finds_exactly_the_seeded_discrepancies() -> None:
    outcomes, rates = history(), book()
    bodies = run_engine(outcomes, rates)
    capped = next(b for b in bodies if b.kind == "capped" and b.referral_id != "r-5")
    capped_key = key(capped.referral_id, capped.metric, capped.episode)

    def seeded(b: EntryBody) -> EntryBody | None:
        at = key(b.referral_id, b.metric, b.episode)
        if at == key("r-5", "M1"):
            return None  # never written: missing
        if at == key("r-6", "M1"):
            return b.model_copy(update={"amount_pence": b.amount_pence - 1})
        if at == key("r-7", "M3"):
            return b.model_copy(update={"kind": "capped", "amount_pence": 0})
        if at == key("r-2", "M1"):
            return b.model_copy(update={"rate_card_version": "2027.1"})
        if at == capped_key:
            return b.model_copy(update={"kind": "claimed", "amount_pence": 25_000})
        return b

    forged = [b for b in map(seeded, bodies) if b is not None]
    ghost = bodies[0].model_copy(update={"referral_id": "r-ghost"})
    ledger = current_claims(chained([*forged, ghost]))
    found = {(d.key, d.problem): d for d in reconcile(outcomes, rates, ledger)}
    assert set(found) == {
        (key("r-5", "M1"), "missing"),
        (key("r-6", "M1"), "amount_differs"),
        (key("r-7", "M3"), "status_differs"),
        (key("r-2", "M1"), "rate_card_differs"),
        (capped_key, "status_differs"),
        (key(ghost.referral_id, ghost.metric, ghost.episode), "unexpected"),
    }
    penny = found[(key("r-6", "M1"), "amount_differs")]
    assert (penny.expected_pence, penny.actual_pence) == (25_000, 24_999)
    assert penny.detail == "the ledger has £249.99 where £250.00 is expected"
    assert found[(key("r-5", "M1"), "missing")].expected_status == "claimed"


def test_expected_claims_use_the_re_entry_start_the_engine_was_told() -> None:
    outcomes, rates = history(), book()
    early_start = {("r-1", 2): T0 + timedelta(days=100)}  # within 180 days of M1 in episode 1
    expected = expected_claims(outcomes, rates, episode_starts=early_start)
    assert key("r-1", "M1", 2) not in expected


# --- statements ---------------------------------------------------------------------------


def entry(partner: str, period: str, metric: str, kind: str, pence: int) -> EntryBody:
    return EntryBody(
        contract_id=CONTRACT,
        referral_id="r-1",
        episode=1,
        metric=metric,
        partner_id=partner,
        period=period,
        kind=kind,
        amount_pence=pence,
        rate_card_version="2026.1",
        actor_id="engine",
        occurred_at=T0,
        recorded_at=T0,
    )


def statement_entries() -> list[EntryBody]:
    north = "north-wellbeing"
    return [
        entry(north, "2026-06", "M1", "claimed", 25_000),
        entry(north, "2026-06", "M1", "claimed", 25_000),
        entry(north, "2026-06", "M1", "validated", 25_000),
        entry(north, "2026-06", "M1", "approved", 25_000),
        entry(north, "2026-06", "M1", "paid", 25_000),
        entry(north, "2026-06", "M3", "claimed", 50_000),
        entry(north, "2026-06", "M3", "disputed", 50_000),
        entry(north, "2026-06", "M3", "reversed", -50_000),
        entry(north, "2026-06", "M2", "capped", 0),
        entry(SOUTH, "2026-07", "M2", "claimed", 30_050),
    ]


def test_statements_total_each_partner_month_against_its_cap() -> None:
    north, south = statements(statement_entries(), book())
    assert (north.partner_id, north.period, south.partner_id) == (
        "north-wellbeing",
        "2026-06",
        SOUTH,
    )
    t = north.total
    assert (t.claims, t.capped, t.claimed_pence, t.approved_pence, t.paid_pence) == (
        3,
        1,
        100_000,
        25_000,
        25_000,
    )
    assert (t.reversed_pence, t.net_pence) == (-50_000, 50_000)
    assert north.metrics["M3"].net_pence == 0
    assert (north.cap_pence, north.headroom_pence) == (200_000, 150_000)


def test_statements_render_as_csv_in_pence_and_pounds() -> None:
    text = to_csv(statements(statement_entries(), book()))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(HEADER)
    assert [(r["partner_id"], r["metric"]) for r in rows] == [
        ("north-wellbeing", "M1"),
        ("north-wellbeing", "M2"),
        ("north-wellbeing", "M3"),
        ("north-wellbeing", "ALL"),
        (SOUTH, "M2"),
        (SOUTH, "ALL"),
    ]
    total = rows[3]
    assert (total["claimed_pence"], total["claimed_gbp"]) == ("100000", "1000.00")
    assert (total["reversed_pence"], total["reversed_gbp"]) == ("-50000", "-500.00")
    assert (total["net_gbp"], total["cap_gbp"], total["headroom_gbp"]) == (
        "500.00",
        "2000.00",
        "1500.00",
    )
    assert rows[0]["cap_pence"] == "" and rows[4]["claimed_gbp"] == "300.50"


def test_a_statement_with_an_unknown_rate_card_version_keeps_its_totals() -> None:
    unknown = statement_entries()[0].model_copy(update={"rate_card_version": "2099.9"})
    (only,) = statements([unknown], book())
    assert (only.total.claimed_pence, only.cap_pence) == (25_000, None)


def test_running_totals_give_every_decision_the_history_a_full_re_sum_gives() -> None:
    """Reconciliation keeps running totals instead of re-summing every earlier claim per
    outcome (which was quadratic); wherever the rules read the history, the two agree."""
    from payments.history import History, Totals
    from payments.reconcile import _as_record
    from payments.rules import target

    rates, totals, records = book(), Totals(), []
    compared = 0
    for event_id, outcome in history():
        for contract in rates.contracts_for(outcome.partner_id):
            aim = target(rates.in_force(contract, outcome.occurred_at), outcome)
            assert aim is not None
            full = History.of(records, aim.key, outcome.partner_id, aim.period)
            running = totals.history(aim.key, outcome.partner_id, aim.period)
            assert running.already_claimed == full.already_claimed
            if not full.already_claimed:  # the rules read nothing else of an already-claimed key
                assert running == full
                compared += 1
            made = decide_in_book(rates, contract, event_id, outcome, records)
            if made.recorded:
                records.append(_as_record(made))
                totals.add(records[-1])
    assert compared > 30
