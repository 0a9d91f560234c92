"""The hash-chained ledger: chaining, tamper detection, checkpoints, and folding entries
back into claims."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from payments.claims import ClaimKey
from payments.entries import claim_entry, current_claims, transition_entry
from payments.errors import IllegalTransition
from payments.ledger import (
    GENESIS_HASH,
    Checkpoint,
    EntryBody,
    LedgerEntry,
    append,
    canonical,
    make_checkpoint,
    verify,
    verify_against_checkpoint,
)
from payments.rules import ClaimDecision

T0 = datetime(2026, 6, 1, 10, tzinfo=UTC)
KEY = b"contract-manager-checkpoint-key"
KINDS = ("claimed", "validated", "approved", "paid", "disputed", "reversed", "capped")


def body(n: int, **changes: Any) -> EntryBody:
    fields: dict[str, Any] = {
        "contract_id": "demo-county-sp-2026",
        "referral_id": f"r-{n % 7}",
        "episode": 1 + n % 2,
        "metric": f"M{1 + n % 4}",
        "partner_id": "north-wellbeing" if n % 3 else "south-wellbeing",
        "period": "2026-06",
        "kind": KINDS[n % len(KINDS)],
        "amount_pence": 25_000 + n,
        "rate_card_version": "2026.1",
        "evidence_event_ids": (f"evt-{n}", f"evt-{n}-b"),
        "measurement_ids": (f"m-{n}",),
        "actor_id": "payments-engine",
        "occurred_at": T0,
        "recorded_at": T0 + timedelta(minutes=n),
    }
    return EntryBody(**{**fields, **changes})


def chain(count: int, start: int = 0) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    for n in range(start, start + count):
        entries.append(append(entries[-1] if entries else None, body(n)))
    return entries


def test_entries_chain_from_genesis_and_verify() -> None:
    entries = chain(5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert verify(entries) == verify([]) == verify(entries[2:], after=entries[1])
    assert verify(entries).ok


def test_the_hash_covers_canonical_json_with_times_in_utc() -> None:
    london = datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("Europe/London"))  # 11:00 UTC
    moments = (london, T0 + timedelta(hours=1))
    same = [append(None, body(1, recorded_at=moment)) for moment in moments]
    assert same[0].hash == same[1].hash
    text = canonical(same[0]).decode()
    assert '"recorded_at":"2026-06-01T11:00:00.000000+00:00"' in text
    assert '"hash"' not in text and '"prev_hash"' in text
    with pytest.raises(ValueError, match="time zone"):
        body(1, recorded_at=datetime(2026, 6, 1))


def _tampered(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-1, 1]) * rng.randint(1, 1_000)
    if isinstance(value, datetime):
        return value + timedelta(seconds=rng.randint(1, 86_400))
    if isinstance(value, tuple):
        return (*value, "forged") if rng.random() < 0.5 or not value else value[:-1]
    if isinstance(value, str):
        return value + rng.choice(["x", "0", " ", "é"]) if value else "x"
    raise AssertionError(f"no tampering for {type(value)}")


def test_changing_any_field_of_any_entry_is_found_at_that_entry() -> None:
    rng = random.Random(20261122)
    entries = chain(50)
    fields = list(LedgerEntry.model_fields)
    for _ in range(1_000):
        row = rng.randrange(len(entries))
        field = rng.choice(fields)
        original = entries[row]
        forged = original.model_copy(update={field: _tampered(getattr(original, field), rng)})
        assert forged != original
        result = verify([*entries[:row], forged, *entries[row + 1 :]])
        assert (result.ok, result.first_broken_seq) == (False, original.seq), (field, row)


def test_a_removed_or_reordered_entry_is_found() -> None:
    entries = chain(10)
    assert verify([*entries[:4], *entries[5:]]).first_broken_seq == 5
    swapped = [*entries[:3], entries[4], entries[3], *entries[5:]]
    assert verify(swapped).first_broken_seq == 4


def test_a_rewritten_chain_verifies_alone_but_fails_against_a_held_checkpoint() -> None:
    entries = chain(40)
    checkpoint = make_checkpoint(entries[:30], KEY)
    assert (checkpoint.seq, checkpoint.head_hash) == (30, entries[29].hash)
    assert verify_against_checkpoint(entries, checkpoint, KEY).ok  # later entries are fine
    rewritten = entries[:9]
    for n in range(9, 40):
        changed = body(n, amount_pence=1) if n == 9 else body(n)
        rewritten.append(append(rewritten[-1], changed))
    assert verify(rewritten).ok  # every hash was recomputed
    result = verify_against_checkpoint(rewritten, checkpoint, KEY)
    assert (result.ok, result.first_broken_seq) == (False, 30)
    assert "rewritten" in result.reason


def test_a_checkpoint_detects_truncation_forgery_and_a_wrong_key() -> None:
    entries = chain(20)
    checkpoint = make_checkpoint(entries, KEY)
    short = verify_against_checkpoint(entries[:15], checkpoint, KEY)
    assert (short.ok, short.first_broken_seq) == (False, 16)
    forged = Checkpoint(10, entries[9].hash, checkpoint.signature)
    assert "signature is wrong" in verify_against_checkpoint(entries, forged, KEY).reason
    assert not verify_against_checkpoint(entries, checkpoint, b"another key").ok
    assert verify_against_checkpoint([], make_checkpoint([], KEY), KEY).ok


def test_a_broken_chain_is_never_checkpointed() -> None:
    entries = chain(3)
    broken = [entries[0], entries[1].model_copy(update={"amount_pence": 1}), entries[2]]
    with pytest.raises(ValueError, match="cannot checkpoint a broken ledger: seq 2"):
        make_checkpoint(broken, KEY)


# --- entries for claims, and claims from entries ------------------------------------------


def decision(status: str = "claimed", amount: int = 50_000) -> ClaimDecision:
    return ClaimDecision(
        status,  # type: ignore[arg-type]
        "WEMWBS +4",
        key=ClaimKey("demo-county-sp-2026", "r-1", 1, "M3"),
        amount_pence=amount,
        price_pence=50_000,
        cap="caps.per_person_pence" if status == "capped" else None,
        rate_card_version="2026.1",
        partner_id="north-wellbeing",
        period="2026-06",
        occurred_at=T0,
        evidence_event_ids=("evt-1", "evt-0"),
        measurement_ids=("m-1", "m-2"),
    )


def write(*bodies: EntryBody) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    for b in bodies:
        entries.append(append(entries[-1] if entries else None, b))
    return entries


def test_a_claim_moves_through_its_lifecycle_as_new_entries() -> None:
    key = ClaimKey("demo-county-sp-2026", "r-1", 1, "M3")
    entries = write(claim_entry(decision(), "engine", T0))
    moves = [
        ("validated", "cm-ann"),
        ("first_approval", "cm-cat"),
        ("approved", "cm-dan"),
        ("paid", "finance"),
        ("disputed", "cm-ann"),
        ("reversed", "cm-cat"),
    ]
    for to, actor in moves:
        claim = current_claims(entries)[key]
        entries = [*entries, append(entries[-1], transition_entry(claim, to, actor, T0))]
    claim = current_claims(entries)[key]
    assert claim.status == "reversed" and claim.earning_pence == 0
    assert claim.statuses == ("claimed", "validated", "approved", "paid", "disputed", "reversed")
    assert (claim.claimant_id, claim.validator_id) == ("engine", "cm-ann")
    assert claim.approver_ids == ("cm-cat", "cm-dan")
    assert [e.amount_pence for e in entries] == [50_000] * 6 + [-50_000]
    assert entries[0].measurement_ids == ("m-1", "m-2")
    assert verify(entries).ok


def test_an_illegal_move_writes_no_entry() -> None:
    key = ClaimKey("demo-county-sp-2026", "r-1", 1, "M3")
    claim = current_claims(write(claim_entry(decision(), "engine", T0)))[key]
    with pytest.raises(IllegalTransition, match="from claimed to paid"):
        transition_entry(claim, "paid", "finance", T0)
    with pytest.raises(IllegalTransition):
        transition_entry(claim, "first_approval", "cm", T0)  # not validated yet


def test_a_capped_claim_is_recorded_with_its_cap_and_re_evaluated_by_a_new_claim() -> None:
    key = ClaimKey("demo-county-sp-2026", "r-1", 1, "M3")
    entries = write(claim_entry(decision("capped", 0), "engine", T0))
    assert (entries[0].kind, entries[0].amount_pence, entries[0].reason) == (
        "capped",
        0,
        "caps.per_person_pence",
    )
    entries = [*entries, append(entries[0], claim_entry(decision(), "engine", T0))]
    claim = current_claims(entries)[key]
    assert (claim.status, claim.amount_pence, claim.statuses) == (
        "claimed",
        50_000,
        ("capped", "claimed"),
    )


def test_not_eligible_decisions_have_no_entry() -> None:
    with pytest.raises(ValueError, match="not recorded"):
        claim_entry(ClaimDecision("not_eligible", "no metric"), "engine", T0)
