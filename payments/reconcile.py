"""Reconciliation: recompute what the ledger should hold from the outcome events, and
list every difference, to the penny.

The expected claims come from the same rules the engine runs (``rules.decide_in_book``),
replayed over the outcome history in the order given (pass the order the engine
consumed them in: caps go to whichever outcome came first). A claim's later lifecycle
(validated, approved, paid, disputed, upheld, reversed) is people's decisions, which the
events cannot recompute; only whether it was claimed or capped, and for how much, can be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from events.outcome import OutcomeEvent
from pathway.measures import Registry
from payments.claims import ClaimKey, ClaimRecord, idempotency_key
from payments.history import Totals
from payments.ratebook import RateCardBook
from payments.ratecard import pounds
from payments.rules import ClaimDecision, decide_with_totals

Problem = Literal["missing", "unexpected", "amount_differs", "status_differs", "rate_card_differs"]


@dataclass(frozen=True)
class Discrepancy:
    key: ClaimKey
    problem: Problem
    expected_status: str | None
    actual_status: str | None
    expected_pence: int | None
    actual_pence: int | None
    detail: str

    @property
    def claim(self) -> str:
        return idempotency_key(self.key)


def expected_claims(
    outcomes: Iterable[tuple[str, OutcomeEvent]],
    book: RateCardBook,
    episode_starts: Mapping[tuple[str, int], datetime] | None = None,
    registry: Registry | None = None,
) -> dict[ClaimKey, ClaimDecision]:
    """The claimed and capped decisions the ledger should record for these outcome
    events, given as ``(event id, outcome)``; ``episode_starts`` maps (referral, episode)
    to when a re-entered episode began, as the live engine was told."""
    starts = episode_starts or {}
    expected: dict[ClaimKey, ClaimDecision] = {}
    # Running totals, not a re-sum of every earlier claim per outcome: that was quadratic
    # (a million outcome events would never have reconciled).
    totals = Totals()
    for event_id, outcome in outcomes:
        started = starts.get((outcome.referral_id, outcome.episode))
        for contract_id in book.contracts_for(outcome.partner_id):
            decision = decide_with_totals(
                book, contract_id, event_id, outcome, totals, started, registry
            )
            if not decision.recorded or decision.key is None:
                continue
            expected[decision.key] = decision
            totals.add(_as_record(decision))
    return expected


def reconcile(
    outcomes: Iterable[tuple[str, OutcomeEvent]],
    book: RateCardBook,
    ledger_claims: Mapping[ClaimKey, ClaimRecord],
    episode_starts: Mapping[tuple[str, int], datetime] | None = None,
    registry: Registry | None = None,
) -> list[Discrepancy]:
    """Every difference between the recomputed claims and the ledger's
    (``entries.current_claims``), sorted by claim."""
    expected = expected_claims(outcomes, book, episode_starts, registry)
    found: list[Discrepancy] = []
    for key in sorted(set(expected) | set(ledger_claims)):
        want, have = expected.get(key), ledger_claims.get(key)
        if want is None and have is not None:
            found.append(_row(key, "unexpected", None, have, "no outcome event earns this claim"))
        elif want is not None and have is None:
            found.append(_row(key, "missing", want, None, f"should be {want.status}"))
        elif want is not None and have is not None:
            found.extend(_compare(key, want, have))
    return found


def _compare(key: ClaimKey, want: ClaimDecision, have: ClaimRecord) -> list[Discrepancy]:
    rows: list[Discrepancy] = []
    if (want.status == "capped") != (have.status == "capped"):
        detail = f"should be {want.status}" + (f" ({want.cap})" if want.cap else "")
        rows.append(_row(key, "status_differs", want, have, detail))
    elif want.amount_pence != have.amount_pence:
        detail = (
            f"the ledger has £{pounds(have.amount_pence)} where "
            f"£{pounds(want.amount_pence)} is expected"
        )
        rows.append(_row(key, "amount_differs", want, have, detail))
    if want.rate_card_version != have.rate_card_version:
        detail = f"should be priced with rate card version {want.rate_card_version}"
        rows.append(_row(key, "rate_card_differs", want, have, detail))
    return rows


def _row(
    key: ClaimKey,
    problem: Problem,
    want: ClaimDecision | None,
    have: ClaimRecord | None,
    detail: str,
) -> Discrepancy:
    return Discrepancy(
        key=key,
        problem=problem,
        expected_status=want.status if want else None,
        actual_status=have.status if have else None,
        expected_pence=want.amount_pence if want else None,
        actual_pence=have.amount_pence if have else None,
        detail=detail,
    )


def _as_record(decision: ClaimDecision) -> ClaimRecord:
    assert decision.key is not None and decision.occurred_at is not None
    return ClaimRecord(
        key=decision.key,
        partner_id=decision.partner_id,
        period=decision.period,
        occurred_at=decision.occurred_at,
        status="capped" if decision.status == "capped" else "claimed",
        amount_pence=decision.amount_pence,
        rate_card_version=decision.rate_card_version or "",
        evidence_event_ids=decision.evidence_event_ids,
    )
