"""The payment engine over a real database (SQLite): claims from outcome events,
idempotency under redelivery and concurrency, the lifecycle with separation of duties,
the append-only ledger, checkpoints, reconciliation and statements."""

from __future__ import annotations

import itertools
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from events import topics
from events.envelope import CloudEvent, new_event
from events.outcome import OutcomeEvent
from events.referral import ReferralReentered
from infra.db import make_engine, transaction
from infra.settings import PaymentSettings
from messaging import outbox
from messaging.outbox import OutboxRow
from ops.tables import create_tables
from payments import event_store, guards, reconciliation, store
from payments.base import ENGINE_ACTOR
from payments.claims import ClaimKey, claim_id
from payments.engine import PaymentEngine, checkpoint_key, rate_card_book
from payments.errors import ClaimInvalid, DutyConflict, IllegalTransition, UnknownClaim
from payments.ledger import EntryBody
from payments.ratebook import PACKAGED_DIR, RateCardBook
from payments.reconcile import reversals_after
from payments.statements import statements
from tests.unit.test_payment_rules import (
    CONTRACT,
    card,
    connection,
    engagement,
    numbered,
    ons4,
    pair,
    reviewed,
    sustained_pair,
    wemwbs_pair,
)

NORTH, SOUTH = "north-wellbeing", "south-wellbeing"
NOW = datetime(2027, 6, 1, 9, tzinfo=UTC)  # every entry's recorded_at: hashes are repeatable
KEY = b"contract-manager-checkpoint-key"
_ids = itertools.count(1)


def payments(engine: Engine, book: RateCardBook | None = None, above: int = 40_000) -> Any:
    return PaymentEngine(engine, book or RateCardBook.packaged(), KEY, above, clock=lambda: NOW)


def envelope(outcome: OutcomeEvent | ReferralReentered, event_id: str | None = None) -> CloudEvent:
    return new_event(
        outcome.TYPE,
        outcome.referral_id,
        outcome.model_dump(mode="json"),
        "urn:linkway:pathway",
        event_id=event_id or f"evt-{next(_ids)}",
    )


def reentered(referral: str, episode: int, at: datetime, partner: str = NORTH) -> Any:
    return ReferralReentered(
        referral_id=referral,
        episode=episode,
        partner_id=partner,
        locality="oswestry",
        stage="triage",
        occurred_at=at,
        previous_episode=episode - 1,
        source="gp",
        referrer_org_id="gp-1",
    )


def deliver(pe: PaymentEngine, *events: tuple[CloudEvent, Any]) -> list[Any]:
    """One consumer transaction: what the Kafka adapter does per batch."""
    decisions: list[Any] = []
    with transaction(pe.engine) as session:
        for env, data in events:
            if isinstance(data, ReferralReentered):
                pe.handle_reentry(session, env, data)
            else:
                decisions += pe.handle_outcome(session, env, data)
    return decisions


def publish_evidence(engine: Engine, *outcomes: OutcomeEvent) -> None:
    """The pathway's own events an outcome cites, as the outbox holds them."""
    with transaction(engine) as session:
        for o in outcomes:
            for event_id in o.evidence_event_ids:
                env = new_event(
                    "linkway.referral.assessed.v1", o.referral_id, {}, "urn:x", event_id=event_id
                )
                outbox.add(session, env, topics.REFERRALS)


def ledger(engine: Engine) -> list[Any]:
    with Session(engine) as session:
        return store.LedgerRepository().entries(session)


def payment_events(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxRow).where(OutboxRow.topic == topics.PAYMENTS).order_by(col(OutboxRow.seq))
        )
        return [json.loads(row.payload)["data"] for row in rows]


@pytest.fixture
def other_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    create_tables(engine)
    yield engine
    engine.dispose()


# --- consuming outcome events -------------------------------------------------------------


def cohort() -> list[tuple[CloudEvent, Any]]:
    """Outcome events for a few people, with a re-entry, in the order they happened."""
    t = datetime(2026, 6, 1, 10, tzinfo=UTC)
    outcomes: list[Any] = [
        engagement(referral="r-1", at=t),
        connection(3, referral="r-1", at=t + timedelta(days=20)),
        reviewed(wemwbs_pair(3), referral="r-1", at=t + timedelta(days=90)),
        engagement(referral="r-2", partner=SOUTH, at=t + timedelta(days=3)),
        reviewed(pair("ONS4", ons4(5), ons4(6)), referral="r-2", partner=SOUTH, at=t),
        engagement(referral="r-3", at=t + timedelta(days=5)),
        reentered("r-3", 2, t + timedelta(days=250)),
        engagement(referral="r-3", episode=2, at=t + timedelta(days=260)),
    ]
    return [(envelope(o), o) for o in outcomes]


def test_redelivery_and_rebatching_leave_the_ledger_exactly_as_one_delivery(
    engine: Engine, other_engine: Engine
) -> None:
    events = cohort()
    once = payments(engine)
    for item in events:
        deliver(once, item)
    thrice = payments(other_engine)
    tripled = [item for item in events for _ in range(3)]
    for start in range(0, len(tripled), 5):  # batches of five, a duplicate inside some
        deliver(thrice, *tripled[start : start + 5])
    for item in events[::-1]:
        assert deliver(thrice, item) == []  # a redelivered event id decides nothing
    first, second = ledger(engine), ledger(other_engine)
    assert [e.kind for e in first] == ["claimed"] * 6
    assert first[-1].hash == second[-1].hash and len(first) == len(second)
    assert payment_events(engine) == payment_events(other_engine)


def test_a_second_outcome_for_the_same_claim_appends_nothing(engine: Engine) -> None:
    pe = payments(engine)
    (made,) = deliver(pe, (envelope(o := engagement()), o))
    (again,) = deliver(pe, (envelope(o := engagement()), o))
    assert (made.status, again.status) == ("claimed", "not_eligible")
    assert again.reason == "M1 is already claimed for this referral's episode 1"
    assert len(ledger(engine)) == 1


@pytest.mark.parametrize("same_event_id", [True, False])
def test_five_concurrent_triggers_of_one_claim_make_one_entry(
    engine: Engine, same_event_id: bool
) -> None:
    pe = payments(engine)
    outcomes = [engagement(referral="r-race") for _ in range(5)]
    events = [envelope(o, "evt-race" if same_event_id else None) for o in outcomes]
    start, errors, decided = threading.Barrier(5), [], []

    def trigger(n: int) -> None:
        start.wait()
        try:
            decided.extend(deliver(pe, (events[n], outcomes[n])))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=trigger, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [d.status for d in decided].count("claimed") == 1
    assert len(ledger(engine)) == 1 and len(payment_events(engine)) == 1


def test_the_caller_rolling_back_leaves_no_trace(engine: Engine) -> None:
    pe = payments(engine)
    o = engagement()
    with pytest.raises(RuntimeError), transaction(engine) as session:
        assert pe.handle_outcome(session, envelope(o, "evt-rollback"), o)[0].status == "claimed"
        raise RuntimeError("the consumer's own write failed")
    assert ledger(engine) == [] and payment_events(engine) == []
    assert deliver(pe, (envelope(o, "evt-rollback"), o))[0].status == "claimed"


def test_engines_sharing_a_database_never_decide_on_a_stale_ledger(engine: Engine) -> None:
    one_claim_a_month = RateCardBook([card(**{"caps.per_partner_per_month_pence": 25_000})])
    here, there = payments(engine, one_claim_a_month), payments(engine, one_claim_a_month)
    mine, theirs = engagement(referral="r-mine"), engagement(referral="r-theirs")
    with pytest.raises(RuntimeError), transaction(engine) as session:
        here.handle_outcome(session, envelope(mine, "evt-mine"), mine)
        raise RuntimeError("rolled back after the append was folded")
    deliver(there, (envelope(theirs), theirs))  # seq 1 is now someone else's entry
    claim = claim_id(ClaimKey(CONTRACT, "r-theirs", 1, "M1"))
    there.dispute(claim, "cm-ann", "audit_query")
    there.resolve(claim, "cm-bob", "reversed")  # the month's cap is free again
    assert deliver(here, (envelope(mine, "evt-mine"), mine))[0].status == "claimed"
    (again,) = deliver(here, (envelope(o := engagement(referral="r-theirs")), o))
    assert again.reason == "M1 is already claimed for this referral's episode 1"
    assert [e.referral_id for e in ledger(engine)] == ["r-theirs"] * 3 + ["r-mine"]
    assert here.verify().ok


def test_a_claim_over_a_cap_is_recorded_as_capped_never_dropped(engine: Engine) -> None:
    pe = payments(engine, RateCardBook([card(**{"caps.per_partner_per_month_pence": 50_000})]))
    made = [deliver(pe, (envelope(o := engagement(referral=f"r-{n}")), o))[0] for n in range(3)]
    assert [d.status for d in made] == ["claimed", "claimed", "capped"]
    capped = ledger(engine)[-1]
    assert (capped.kind, capped.amount_pence, capped.reason) == (
        "capped",
        0,
        "caps.per_partner_per_month_pence",
    )
    (view,) = pe.claims(status="capped").items
    assert (view.referral_id, view.cap) == ("r-2", "caps.per_partner_per_month_pence")
    assert [e["status"] for e in payment_events(engine)] == ["claimed", "claimed", "capped"]
    (again,) = deliver(pe, (envelope(o := engagement(referral="r-2")), o))
    assert again.reason == "M1 is already in the ledger for this episode (capped)"
    assert len(ledger(engine)) == 3


# --- the lifecycle ------------------------------------------------------------------------


def claimed_m3(engine: Engine, pe: PaymentEngine, **kw: Any) -> str:
    o = reviewed(wemwbs_pair(4), **kw)
    publish_evidence(engine, o)
    (made,) = deliver(pe, (envelope(o), o))
    assert made.status == "claimed" and made.key is not None
    return claim_id(made.key)


def test_a_claim_moves_through_its_lifecycle_with_duties_separated(engine: Engine) -> None:
    pe = payments(engine, above=40_000)  # M3 at £500 needs two approvers
    claim = claimed_m3(engine, pe)
    with pytest.raises(DutyConflict, match="they made the claim"):
        pe.validate(claim, ENGINE_ACTOR)
    with pytest.raises(DutyConflict, match="they produced its evidence"):
        pe.validate(claim, NORTH)
    with pytest.raises(IllegalTransition, match="from claimed to approved"):
        pe.approve(claim, "cm-bob")
    assert pe.validate(claim, "cm-ann").status == "validated"
    with pytest.raises(DutyConflict, match="they validated it"):
        pe.approve(claim, "cm-ann")
    first = pe.approve(claim, "cm-bob")
    assert (first.status, first.approver_ids, first.approvals_needed) == (
        "validated",
        ["cm-bob"],
        2,
    )
    with pytest.raises(DutyConflict, match="already approved"):
        pe.approve(claim, "cm-bob")
    assert pe.approve(claim, "cm-cat").status == "approved"
    assert pe.mark_paid(claim, "finance-1", "BACS-2027-0042").status == "paid"
    with pytest.raises(DutyConflict, match="cannot dispute this claim: they produced"):
        pe.dispute(claim, "pathway", "evidence_doubt")
    assert pe.dispute(claim, "cm-dan", "evidence_doubt").status == "disputed"
    done = pe.resolve(claim, "cm-eve", "reversed")
    assert done.statuses == ["claimed", "validated", "approved", "paid", "disputed", "reversed"]
    entries = ledger(engine)
    assert [e.amount_pence for e in entries][-2:] == [50_000, -50_000]
    assert [(e.kind, e.reason) for e in entries if e.reason] == [
        ("paid", "BACS-2027-0042"),
        ("disputed", "evidence_doubt"),
    ]
    announced = [(e["status"], e["amount_pence"]) for e in payment_events(engine)]
    assert announced == [
        ("claimed", 50_000),
        ("validated", 50_000),
        ("approved", 50_000),  # the first approval changed no status: not announced
        ("paid", 50_000),
        ("disputed", 50_000),
        ("reversed", 50_000),
    ]
    assert pe.verify().ok


def test_a_claim_at_or_below_the_threshold_needs_one_approver(engine: Engine) -> None:
    pe = payments(engine, above=50_000)
    claim = claimed_m3(engine, pe)
    pe.validate(claim, "cm-ann")
    assert pe.approve(claim, "cm-bob").status == "approved"


def test_an_upheld_dispute_resumes_the_lifecycle(engine: Engine) -> None:
    pe = payments(engine)
    claim = claimed_m3(engine, pe)
    pe.dispute(claim, "cm-ann", "late_evidence")
    assert pe.resolve(claim, "cm-bob", "upheld").status == "upheld"
    assert pe.validate(claim, "cm-cat").status == "validated"


def test_validation_lists_every_problem_and_writes_nothing(engine: Engine) -> None:
    pe = payments(engine)
    o = engagement(consent=False)  # and its evidence events were never published
    (made,) = deliver(pe, (envelope(o), o))
    claim = claim_id(made.key)
    with pytest.raises(ClaimInvalid) as caught:
        pe.validate(claim, "cm-ann")
    problems = "\n".join(caught.value.problems)
    assert "consent was not recorded" in problems
    assert f"evidence events not in the event store: {o.evidence_event_ids[0]}" in problems
    assert len(ledger(engine)) == 1


def test_unknown_claims_and_bad_codes_are_refused(engine: Engine) -> None:
    pe = payments(engine)
    with pytest.raises(UnknownClaim):
        pe.approve("no-such-claim", "cm-ann")
    claim = claimed_m3(engine, pe)
    with pytest.raises(ValueError, match="is a code"):
        pe.dispute(claim, "cm-ann", "the person says so")
    with pytest.raises(IllegalTransition, match="from claimed to upheld"):
        pe.resolve(claim, "cm-ann", "upheld")


def test_the_evidence_trail_names_events_measurements_and_rate_card(engine: Engine) -> None:
    pe = payments(engine)
    good = wemwbs_pair(4)
    o = reviewed(pair("ONS4", ons4(5), ons4(5)), good)
    publish_evidence(engine, o)
    env = envelope(o)
    (made,) = deliver(pe, (env, o))
    trail = pe.evidence(claim_id(made.key))
    assert [(e.event_id, e.found) for e in trail.events] == [
        (env.id, True),
        (o.evidence_event_ids[0], True),
    ]
    assert trail.events[0].type == "linkway.outcome.wellbeing_reviewed.v1"
    counted = [m.measurement_id for m in trail.measurements if m.counted]
    assert counted == [good.baseline.measurement_id, good.followup.measurement_id]
    assert trail.rule_met == "WEMWBS +4 (meaningful change is +3)"
    assert trail.rate_card is not None
    assert (trail.rate_card.version, trail.rate_card.price_pence) == ("2026.1", 50_000)
    assert trail.rate_card.rule["instruments"]["WEMWBS"]["min_change"] == 3
    assert [e.kind for e in trail.entries] == ["claimed"]


# --- the ledger: append-only, tamper-evident, checkpointed --------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount_pence = 1",
        "DELETE FROM ledger_entries",
        "UPDATE outcome_events SET envelope = '{}'",
        "DELETE FROM outcome_events",
        "DELETE FROM ledger_checkpoints",
    ],
)
def test_the_database_refuses_to_change_the_ledger(engine: Engine, statement: str) -> None:
    pe = payments(engine)
    deliver(pe, (envelope(o := engagement()), o))
    pe.checkpoint()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert ledger(engine)[0].amount_pence == 25_000


def test_the_guards_can_be_reinstalled_on_an_existing_database(engine: Engine) -> None:
    deliver(payments(engine), (envelope(o := engagement()), o))
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER ledger_entries_no_delete"))
    guards.install_append_only_guards(engine)
    guards.install_append_only_guards(engine)  # idempotent
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_entries"))


def tamper(engine: Engine, statement: str) -> None:
    """What someone with database access could do after dropping the guard."""
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS ledger_entries_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS ledger_entries_no_delete"))
        conn.execute(text(statement))


def test_verify_finds_the_first_tampered_entry_in_the_stored_chain(engine: Engine) -> None:
    pe = payments(engine)
    for _ in range(4):
        deliver(pe, (envelope(o := engagement(referral=f"r-{next(_ids)}")), o))
    assert pe.verify().ok
    tamper(engine, "UPDATE ledger_entries SET amount_pence = 24999 WHERE seq = 2")
    result = pe.verify()
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert "contents do not match its hash" in result.reason


def test_verify_reports_a_row_that_is_no_longer_an_entry(engine: Engine) -> None:
    pe = payments(engine)
    for _ in range(3):
        deliver(pe, (envelope(o := engagement(referral=f"r-{next(_ids)}")), o))
    tamper(engine, "UPDATE ledger_entries SET kind = 'settled' WHERE seq = 3")
    result = pe.verify()
    assert (result.ok, result.first_broken_seq) == (False, 3)


def test_a_held_checkpoint_detects_a_truncated_ledger(engine: Engine) -> None:
    pe = payments(engine)
    for _ in range(3):
        deliver(pe, (envelope(o := engagement(referral=f"r-{next(_ids)}")), o))
    held = pe.checkpoint("cm-ann")
    assert (held.seq, held.actor_id) == (3, "cm-ann")
    assert pe.verify_checkpoint(held.checkpoint).ok
    assert [c.seq for c in pe.checkpoints()] == [3]
    tamper(engine, "DELETE FROM ledger_entries WHERE seq = 3")
    assert pe.verify().ok  # the remaining chain is consistent on its own
    result = pe.verify_checkpoint(held.checkpoint)
    assert (result.ok, result.first_broken_seq) == (False, 3)


def test_checkpoints_are_taken_when_due(engine: Engine) -> None:
    pe = payments(engine)
    assert pe.checkpoint_if_due(2) is None
    for _ in range(2):
        deliver(pe, (envelope(o := engagement(referral=f"r-{next(_ids)}")), o))
    made = pe.checkpoint_if_due(2)
    assert made is not None and made.seq == 2
    assert pe.checkpoint_if_due(2) is None


def test_settings_generate_a_checkpoint_key_once_in_the_embedded_default(tmp_path: Path) -> None:
    settings = PaymentSettings()
    key = checkpoint_key(settings, tmp_path)
    assert len(key) == 64 and checkpoint_key(settings, tmp_path) == key
    held = PaymentSettings(checkpoint_key="held-elsewhere")
    assert checkpoint_key(held, tmp_path) == b"held-elsewhere"
    assert [c.version for c in rate_card_book(settings).versions(CONTRACT)] == ["2026.1", "2027.1"]


def test_payment_settings_keep_their_documented_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/production.md names these; moving the settings must not rename them."""
    card = tmp_path / "card.toml"
    card.write_text((PACKAGED_DIR / "default.toml").read_text())
    for name, value in {
        "CHECKPOINT_KEY": "k",
        "SECOND_APPROVAL_ABOVE_PENCE": "7",
        "RATE_CARDS": f" {card} ,",
        "CHECKPOINT_EVERY_ENTRIES": "9",
    }.items():
        monkeypatch.setenv(f"LINKWAY_PAYMENTS_{name}", value)
    settings = PaymentSettings()
    assert (settings.checkpoint_key, settings.second_approval_above_pence) == ("k", 7)
    assert (settings.rate_card_paths, settings.checkpoint_every_entries) == ([card], 9)
    pe = PaymentEngine.from_settings(make_engine("sqlite://"), settings, tmp_path)
    assert (pe.second_approval_above_pence, pe.checkpoint_every) == (7, 9)


# --- reconciliation -----------------------------------------------------------------------


def test_reconciliation_of_an_honest_ledger_is_clean(engine: Engine) -> None:
    pe = payments(engine)
    for item in cohort():
        deliver(pe, item)
    report = pe.reconcile()
    assert (report.ok, report.outcome_events, report.expected_claims) == (True, 7, 6)


# Referral ids whose byte order (Python's, which reconciliation merges the ledger in)
# differs from a linguistic collation's, which first ignores punctuation and case.
AWKWARD_IDS = ("r-b", "r_a", "R-c", "ra", "r.b", "r-B", "rB")


def reads_the_ledger_in_claim_key_order(pe: PaymentEngine) -> None:
    """The two reads reconciliation makes of the ledger besides the events: every entry
    in claim-key order, and the reversals with the claim entry before each."""
    for n, referral in enumerate(AWKWARD_IDS):
        made = (engagement(referral=referral), connection(referral=referral))
        deliver(pe, *((envelope(o), o) for o in made))
        if n % 3 == 0:  # reversed between later outcomes: each placed where it was made
            claim = claim_id(ClaimKey(CONTRACT, referral, 1, "M1"))
            pe.dispute(claim, "cm-ann", "audit_query")
            pe.resolve(claim, "cm-bob", "reversed")
    repo = store.LedgerRepository()
    with Session(pe.engine) as session:
        keys = [
            ClaimKey(e.contract_id, e.referral_id, e.episode, e.metric)
            for e in repo.by_claim_key(session)
        ]
        undo = reversals_after(repo.reversals(session))
        assert undo == reversals_after(repo.stream(session)) and len(undo) == 3
    claims = 2 * len(AWKWARD_IDS)
    assert keys == sorted(keys) and len(set(keys)) == claims and len(keys) == claims + 6
    report = pe.reconcile()
    assert (report.ok, report.ledger_claims) == (True, claims)


def test_reconciliation_reads_the_ledger_in_claim_key_order(other_engine: Engine) -> None:
    reads_the_ledger_in_claim_key_order(payments(other_engine))


def reconciles_one_moment(pe: PaymentEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outcomes consumed while a reconciliation runs (the payments consumer goes on) are in
    neither what it reads of the events nor what it reads of the ledger."""
    for item in cohort():
        deliver(pe, item)
    monkeypatch.setattr(reconciliation, "_EVERY", 1)  # a progress call after every event
    late = iter([engagement(referral="r-late-1"), engagement(referral="r-late-2")])

    def consumer_meanwhile(read: int, total: int) -> None:
        arriving = next(late, None)
        if arriving is not None:
            deliver(pe, (envelope(arriving), arriving))

    during = pe.reconcile(consumer_meanwhile)
    assert (during.ok, during.outcome_events, during.ledger_claims) == (True, 7, 6), during
    after = pe.reconcile()
    assert (after.ok, after.outcome_events, after.ledger_claims) == (True, 9, 8)


def test_reconciliation_reads_one_moment_of_the_database(
    other_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciles_one_moment(payments(other_engine), monkeypatch)


def test_reconciliation_finds_exactly_the_seeded_discrepancies(engine: Engine) -> None:
    pe = payments(engine, RateCardBook([card(**{"caps.per_partner_per_month_pence": 50_000})]))
    for n in range(3):  # r-2's M1 is capped
        deliver(pe, (envelope(o := engagement(referral=f"r-{n}")), o))
    skipped = engagement(referral="r-9")
    repo = store.LedgerRepository()
    with transaction(engine) as session:
        # an outcome the engine stored but never decided: its claim is missing
        event_store.record_event(session, envelope(skipped), "r-9", 1, skipped.occurred_at)
        # a claim no outcome earns, and a capped claim re-claimed behind the rules' back
        for referral, kind in (("r-ghost", "claimed"), ("r-2", "claimed")):
            repo.append(session, forged_body(referral, kind))
    tamper(engine, "UPDATE ledger_entries SET amount_pence = 24999 WHERE referral_id = 'r-1'")
    found = {(d.referral_id, d.problem): d for d in pe.reconcile().discrepancies}
    assert set(found) == {
        ("r-9", "missing"),
        ("r-ghost", "unexpected"),
        ("r-2", "status_differs"),
        ("r-1", "amount_differs"),
    }
    penny = found[("r-1", "amount_differs")]
    assert (penny.expected_pence, penny.actual_pence) == (25_000, 24_999)
    assert penny.detail == "the ledger has £249.99 where £250.00 is expected"
    assert penny.claim_id == claim_id(ClaimKey(CONTRACT, "r-1", 1, "M1"))


def forged_body(referral: str, kind: str) -> EntryBody:
    return EntryBody(
        contract_id=CONTRACT,
        referral_id=referral,
        episode=1,
        metric="M1",
        partner_id=NORTH,
        period="2026-06",
        kind=kind,
        amount_pence=25_000,
        rate_card_version="2026.1",
        actor_id="someone",
        occurred_at=NOW,
        recorded_at=NOW,
    )


# --- end to end: a cohort against a hand-computed table ----------------------------------


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def no_change(code: str = "WEMWBS") -> Any:
    return pair(code, numbered(14), numbered(14, _1=4))  # +1 point: not meaningful


def star(areas: int) -> Any:
    names = ["lifestyle", "money", "where_you_live", "family_friends", "feeling_positive"]
    names += ["looking_after_yourself", "managing_symptoms", "work_volunteering"]
    before = dict.fromkeys(names, 2)
    return pair("STAR", before, {**before, **dict.fromkeys(names[:areas], 3)})


def e2e_cohort() -> list[Any]:
    return [
        # r-a: every metric once, in 2026-27
        engagement(referral="r-a", at=at("2026-06-01")),
        connection(3, referral="r-a", at=at("2026-06-20")),
        reviewed(wemwbs_pair(3), referral="r-a", at=at("2026-09-01")),
        reviewed(sustained_pair(3, 4), sustained=True, referral="r-a", at=at("2026-12-01")),
        engagement(referral="r-a", at=at("2026-06-02")),  # the same fact again: nothing
        # r-b does not improve, then comes back after the exclusion window
        engagement(referral="r-b", at=at("2026-06-05")),
        connection(2, referral="r-b", at=at("2026-06-25")),  # two sessions: three needed
        reviewed(pair("ONS4", ons4(5), ons4(6)), referral="r-b", at=at("2026-09-05")),
        reviewed(no_change(), sustained=True, referral="r-b", at=at("2026-12-05")),
        reentered("r-b", 2, at("2027-01-10")),  # 219 days after M1: may earn it again
        engagement(referral="r-b", episode=2, at=at("2027-02-01")),
        # r-a comes back inside the window: episode 2 began 122 days after M1
        reentered("r-a", 2, at("2026-10-01")),
        engagement(referral="r-a", episode=2, at=at("2027-01-15")),
        # r-c (south): one area of the Star is not enough
        engagement(referral="r-c", partner=SOUTH, at=at("2026-07-10")),
        reviewed(star(1), referral="r-c", partner=SOUTH, at=at("2026-10-10")),
        # re-pricing: 2027.1 prices outcomes from 1 April 2027, London time
        connection(4, referral="r-e", at=at("2027-03-31", 12)),  # 2026.1
        connection(3, referral="r-d", at=at("2027-03-31", 23, 30)),  # 00:30 BST: 2027.1
        engagement(referral="r-d", at=at("2027-04-02")),
        # outside the contract, and a partner it does not pay
        engagement(referral="r-f", at=at("2026-03-15")),
        engagement(referral="r-g", partner="elsewhere", at=at("2026-06-01")),
    ]


EXPECTED = {  # (referral, episode, metric): (pence, rate card version, period)
    ("r-a", 1, "M1"): (25_000, "2026.1", "2026-06"),
    ("r-a", 1, "M2"): (30_000, "2026.1", "2026-06"),
    ("r-a", 1, "M3"): (50_000, "2026.1", "2026-09"),
    ("r-a", 1, "M4"): (40_000, "2026.1", "2026-12"),
    ("r-b", 1, "M1"): (25_000, "2026.1", "2026-06"),
    ("r-b", 2, "M1"): (25_000, "2026.1", "2027-02"),
    ("r-c", 1, "M1"): (25_000, "2026.1", "2026-07"),
    ("r-e", 1, "M2"): (30_000, "2026.1", "2027-03"),
    ("r-d", 1, "M2"): (30_900, "2027.1", "2027-04"),
    ("r-d", 1, "M1"): (25_750, "2027.1", "2027-04"),
}
STATEMENTS = {  # (partner, period): (claims, claimed pence)
    (NORTH, "2026-06"): (3, 80_000),
    (NORTH, "2026-09"): (1, 50_000),
    (NORTH, "2026-12"): (1, 40_000),
    (NORTH, "2027-02"): (1, 25_000),
    (NORTH, "2027-03"): (1, 30_000),
    (NORTH, "2027-04"): (2, 56_650),
    (SOUTH, "2026-07"): (1, 25_000),
}


def claims_table(views: Iterable[Any]) -> dict[tuple[str, int, str], tuple[int, str, str]]:
    return {
        (v.referral_id, v.episode, v.metric): (v.amount_pence, v.rate_card_version, v.period)
        for v in views
    }


def test_a_cohort_produces_exactly_the_hand_computed_claims_and_statements(
    engine: Engine,
) -> None:
    pe = payments(engine)
    for item in e2e_cohort():
        deliver(pe, (envelope(item), item))
    page = pe.claims(limit=100)
    assert claims_table(page.items) == EXPECTED
    assert {v.status for v in page.items} == {"claimed"}
    got = {
        (s.partner_id, s.period): (s.total.claims, s.total.claimed_pence) for s in pe.statements()
    }
    assert got == STATEMENTS
    assert all(s.cap_pence == 15_000_000 for s in pe.statements())
    assert sum(pence for pence, _, _ in EXPECTED.values()) == 306_650
    assert pe.reconcile().ok and pe.verify().ok
    csv_text = pe.statements_csv(period="2027-04")
    assert "north-wellbeing,2027-04,ALL,2,0,56650,566.50" in csv_text


def test_claims_page_by_cursor_and_filter(engine: Engine) -> None:
    pe = payments(engine)
    for item in e2e_cohort():
        deliver(pe, (envelope(item), item))
    first = pe.claims(limit=4)
    second = pe.claims(after=int(first.next_cursor or 0), limit=4)
    third = pe.claims(after=int(second.next_cursor or 0), limit=4)
    assert (len(first.items), len(second.items), len(third.items)) == (4, 4, 2)
    assert third.next_cursor is None
    seen = [v.claim_id for page in (first, second, third) for v in page.items]
    assert len(set(seen)) == 10
    assert claims_table(pe.claims(partner_id=SOUTH).items) == {
        ("r-c", 1, "M1"): (25_000, "2026.1", "2026-07")
    }
    assert len(pe.claims(metric="M2", period="2027-04").items) == 1
    assert len(pe.claims(contract_id="other").items) == 0


def test_statements_agree_with_the_pure_statements_over_the_stored_ledger(
    engine: Engine,
) -> None:
    pe = payments(engine)
    for item in e2e_cohort():
        deliver(pe, (envelope(item), item))
    assert pe.statements() == statements(ledger(engine), pe.book)
    assert [s.period for s in pe.statements(period="2026-06")] == ["2026-06"]
    assert pe.statements(partner_id=SOUTH)[0].total.claimed_pence == 25_000


# --- PostgreSQL: the same guarantees, when a server is given ------------------------------


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A scratch schema in the database at ``LINKWAY_TEST_POSTGRES_URL``, dropped after."""
    url = os.environ.get("LINKWAY_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set LINKWAY_TEST_POSTGRES_URL to run the PostgreSQL checks")
    schema = f"linkway_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        create_tables(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_postgres_refuses_to_change_the_ledger(pg_engine: Engine) -> None:
    pe = payments(pg_engine)
    deliver(pe, (envelope(o := engagement()), o))
    for statement in (
        "UPDATE ledger_entries SET amount_pence = 1",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries",
        "DELETE FROM outcome_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"), pg_engine.begin() as conn:
            conn.execute(text(statement))
    guards.install_append_only_guards(pg_engine)  # idempotent
    assert pe.verify().ok and ledger(pg_engine)[0].amount_pence == 25_000


def test_postgres_reads_the_ledger_in_claim_key_order_whatever_its_collation(
    pg_engine: Engine,
) -> None:
    """A production cluster sorts text linguistically (en_GB.UTF-8): the ledger's key
    columns are given ICU's root collation here, where the test cluster's is bytes."""
    with pg_engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'")).first():
            for column in ("contract_id", "referral_id", "metric"):
                conn.execute(
                    text(
                        f"ALTER TABLE ledger_entries ALTER COLUMN {column} "
                        'TYPE varchar COLLATE "und-x-icu"'
                    )
                )
    reads_the_ledger_in_claim_key_order(payments(pg_engine))


def test_postgres_reconciliation_reads_one_moment_of_the_database(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciles_one_moment(payments(pg_engine), monkeypatch)


def test_postgres_serialises_concurrent_appends(pg_engine: Engine) -> None:
    pe = payments(pg_engine)
    outcomes = [engagement(referral=f"r-{n % 3}") for n in range(12)]
    start, errors = threading.Barrier(len(outcomes)), []

    def trigger(o: OutcomeEvent) -> None:
        start.wait()
        try:
            deliver(pe, (envelope(o), o))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=trigger, args=(o,)) for o in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(ledger(pg_engine)) == 3 and pe.verify().ok and pe.reconcile().ok


def test_an_end_only_claim_shows_when_it_can_be_validated_and_is_refused_before(
    engine: Engine,
) -> None:
    """Issue 11 defect 5: claimable_only_at_end is on the claim a contract manager reads,
    and the engine refuses to validate it before the contract's end date."""
    end_only = RateCardBook([card(**{"metrics.M1.claimable_only_at_end": True})])
    pe = payments(engine, end_only)
    o = engagement()
    publish_evidence(engine, o)
    (made,) = deliver(pe, (envelope(o), o))
    view = pe.claim(claim_id(made.key))
    assert view.claimable_from == date(2029, 3, 31)
    with pytest.raises(ClaimInvalid) as caught:
        pe.validate(view.claim_id, "cm-ann")
    assert list(caught.value.problems) == ["M1 is claimable only at the contract end (2029-03-31)"]
    assert payments(engine).claim(view.claim_id).claimable_from is None  # the demo card
