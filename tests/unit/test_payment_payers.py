"""Co-funded contracts (issue 11): each claim's split between payers is in the ledger,
statements per payer add up to the partner statements, and a payer's own cap holds.
Pure, except the last test, which runs the engine on the test database."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.claims import ClaimKey
from payments.entries import claim_entry, current_claims, transition_entry
from payments.errors import RateCardError
from payments.history import History
from payments.ledger import EntryBody, append, entry_hash, verify
from payments.payers import split
from payments.ratebook import RateCardBook
from payments.ratecard import Payer
from payments.rules import decide, decide_in_book
from payments.statements import COMMISSIONER, payer_csv, payer_statements, statements
from tests.unit.test_payment_rules import CONTRACT, T0, card, engagement

CO_FUNDED: dict[str, Any] = {
    "payers": {
        "commissioner": {"name": "Demo County ICB", "share_basis_points": 7_000},
        "lcf": {"name": "Life Chances Fund", "share_basis_points": 3_000},
    }
}


def shares(a: int, b: int) -> dict[str, Payer]:
    return {
        "a": Payer(name="A", share_basis_points=a),
        "b": Payer(name="B", share_basis_points=b),
    }


@given(st.integers(min_value=-(10**9), max_value=10**9), st.integers(min_value=1, max_value=9_999))
def test_a_split_always_adds_up_to_the_amount_to_the_penny(amount: int, a: int) -> None:
    parts = split(amount, shares(a, 10_000 - a))
    assert sum(p for _, p in parts) == amount
    assert split(-amount, shares(a, 10_000 - a)) == tuple((pid, -p) for pid, p in parts)


def test_seventy_thirty_of_an_odd_price_gives_the_odd_penny_to_the_larger_remainder() -> None:
    assert split(25_001, shares(7_000, 3_000)) == (("a", 17_501), ("b", 7_500))
    assert split(1, shares(5_000, 5_000)) == (("a", 1), ("b", 0))  # ties: listed first


def test_shares_must_add_up_to_one_hundred_percent() -> None:
    lopsided = {"lcf": {"name": "Life Chances Fund", "share_basis_points": 2_000}}
    with pytest.raises(RateCardError, match=r"^payers: shares must add up to 10000"):
        card(payers={**CO_FUNDED["payers"], **lopsided})


def test_each_claim_records_its_split_in_the_ledger_and_a_reversal_takes_it_back() -> None:
    made = decide("evt-1", engagement(), card(**CO_FUNDED), History())
    assert made.shares == (("commissioner", 17_500), ("lcf", 7_500))
    body = claim_entry(made, "payments-engine", T0)
    assert body.shares == made.shares
    claim = current_claims([body])[made.key]
    disputed = transition_entry(claim, "disputed", "cm-1", T0)
    reversal = transition_entry(current_claims([body, disputed])[made.key], "reversed", "cm-2", T0)
    assert reversal.shares == (("commissioner", -17_500), ("lcf", -7_500))


def test_an_entry_without_a_split_keeps_the_hash_it_had_before_co_funding() -> None:
    """Entries chained before co-funding existed must still verify."""
    made = decide("evt-1", engagement(), card(), History())
    entry = append(None, claim_entry(made, "payments-engine", T0))
    assert entry.shares == () and b"shares" not in _canonical(entry)
    assert verify([entry]).ok and entry_hash(entry) == entry.hash


def test_a_tampered_split_is_detected() -> None:
    made = decide("evt-1", engagement(), card(**CO_FUNDED), History())
    entry = append(None, claim_entry(made, "payments-engine", T0))
    forged = entry.model_copy(update={"shares": (("commissioner", 25_000), ("lcf", 0))})
    assert verify([forged]).first_broken_seq == 1


def test_a_payers_own_cap_caps_the_claim_naming_the_payer() -> None:
    capped = {**CO_FUNDED, "payers": {**CO_FUNDED["payers"]}}
    capped["payers"]["lcf"] = {**capped["payers"]["lcf"], "cap_pence": 10_000}
    rates = RateCardBook([card(**capped)])
    bodies: list[EntryBody] = []
    for n in range(2):
        o = engagement(referral=f"r-{n}")
        made = decide_in_book(rates, CONTRACT, f"evt-{n}", o, current_claims(bodies).values())
        bodies.append(claim_entry(made, "payments-engine", T0))
    first, second = (current_claims(bodies)[ClaimKey(CONTRACT, f"r-{n}", 1, "M1")] for n in (0, 1))
    assert (first.status, second.status) == ("claimed", "capped")
    assert bodies[1].reason == "payers.lcf.cap_pence"


def test_statements_per_payer_add_up_to_the_partner_statements() -> None:
    rates = RateCardBook([card(**CO_FUNDED)])
    bodies: list[EntryBody] = []
    for n in range(5):
        o = engagement(referral=f"r-{n}", partner="south-wellbeing" if n % 2 else "north-wellbeing")
        made = decide_in_book(rates, CONTRACT, f"evt-{n}", o, current_claims(bodies).values())
        bodies.append(claim_entry(made, "payments-engine", T0))
    claim = current_claims(bodies)[ClaimKey(CONTRACT, "r-0", 1, "M1")]
    bodies.append(transition_entry(claim, "disputed", "cm-1", T0))
    claim = current_claims(bodies)[claim.key]
    bodies.append(transition_entry(claim, "reversed", "cm-2", T0))
    by_payer = {s.payer_id: s.total for s in payer_statements(bodies)}
    partners = statements(bodies, rates)
    assert sum(t.net_pence for t in by_payer.values()) == sum(s.total.net_pence for s in partners)
    assert sum(t.claimed_pence for t in by_payer.values()) == 5 * 25_000
    assert (by_payer["commissioner"].net_pence, by_payer["lcf"].net_pence) == (70_000, 30_000)
    assert (
        payer_csv(payer_statements(bodies))
        .splitlines()[1]
        .startswith("demo-county-sp-2026,commissioner,2026-06,5,0,87500,875.00")
    )


def test_a_contract_without_payers_is_the_commissioners_whole() -> None:
    made = decide("evt-1", engagement(), card(), History())
    (only,) = payer_statements([claim_entry(made, "payments-engine", T0)])
    assert (only.payer_id, only.total.claimed_pence) == (COMMISSIONER, 25_000)


def _canonical(entry: Any) -> bytes:
    from payments.ledger import canonical

    return canonical(entry)


def test_reconciliation_reports_a_claim_split_differently_from_the_rate_card() -> None:
    from payments.reconcile import reconcile

    rates = RateCardBook([card(**CO_FUNDED)])
    o = engagement()
    made = decide_in_book(rates, CONTRACT, "evt-1", o, [])
    honest = claim_entry(made, "payments-engine", T0)
    assert reconcile([("evt-1", o)], rates, current_claims([honest])) == []
    skewed = honest.model_copy(update={"shares": (("commissioner", 20_000), ("lcf", 5_000))})
    (found,) = reconcile([("evt-1", o)], rates, current_claims([skewed]))
    assert (found.problem, found.detail) == (
        "split_differs",
        "the split between payers should be commissioner £175.00, lcf £75.00",
    )
