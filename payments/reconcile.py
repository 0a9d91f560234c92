"""Reconciliation: recompute what the ledger should hold from the outcome events, and
list every difference, to the penny.

The expected claims come from the same rules the engine runs (``rules.decide_in_book``),
replayed over the outcome history in the order given (pass the order the engine
consumed them in: caps go to whichever outcome came first). A claim's later lifecycle
(validated, approved, paid, disputed, upheld, reversed) is people's decisions, which the
events cannot recompute; only whether it was claimed or capped, and for how much, can be.

A reversal is such a decision, but it frees room under the caps, so a later outcome may
earn what it would otherwise not: the replay takes each reversal back at the point the
ledger made it (``reversals_after``), or it would report a false "should be capped".
One pass, linear in events plus ledger entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from events.outcome import OutcomeEvent
from pathway.measures import Registry
from payments.claims import ClaimKey, ClaimRecord, idempotency_key
from payments.entries import current_claims
from payments.history import Totals
from payments.ledger import EntryBody
from payments.ratebook import RateCardBook
from payments.ratecard import pounds
from payments.rules import ClaimDecision, decide_with_totals

Problem = Literal[
    "missing",
    "unexpected",
    "amount_differs",
    "status_differs",
    "rate_card_differs",
    "split_differs",
]


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


# Before any outcome: reversals the ledger holds ahead of every claim entry (none, in a
# sound ledger; kept so a broken one is still replayed in its own order).
BEFORE_ANY = ""


def reversals_after(entries: Iterable[EntryBody]) -> dict[str, list[ClaimKey]]:
    """Which claims the ledger reversed after deciding each outcome event: the event id
    (the first evidence id of the last claim entry before the reversal) -> the keys.
    Reversals before any claim entry are under ``BEFORE_ANY``."""
    after: dict[str, list[ClaimKey]] = {}
    for _ in _watching(entries, after):
        pass
    return after


def claims_and_reversals(
    entries: Iterable[EntryBody],
) -> tuple[dict[ClaimKey, ClaimRecord], dict[str, list[ClaimKey]]]:
    """``current_claims`` and ``reversals_after`` in one pass, so the ledger can be
    streamed once rather than held whole."""
    after: dict[str, list[ClaimKey]] = {}
    return current_claims(_watching(entries, after)), after


def _watching(
    entries: Iterable[EntryBody], after: dict[str, list[ClaimKey]]
) -> Iterator[EntryBody]:
    last = BEFORE_ANY
    for entry in entries:
        if entry.kind in ("claimed", "capped") and entry.evidence_event_ids:
            last = entry.evidence_event_ids[0]
        elif entry.kind == "reversed":
            key = ClaimKey(entry.contract_id, entry.referral_id, entry.episode, entry.metric)
            after.setdefault(last, []).append(key)
        yield entry


def expected_claims(
    outcomes: Iterable[tuple[str, OutcomeEvent]],
    book: RateCardBook,
    episode_starts: Mapping[tuple[str, int], datetime] | None = None,
    registry: Registry | None = None,
    reversals: Mapping[str, Sequence[ClaimKey]] | None = None,
) -> dict[ClaimKey, ClaimDecision]:
    """The claimed and capped decisions the ledger should record for these outcome
    events, given as ``(event id, outcome)``; ``episode_starts`` maps (referral, episode)
    to when a re-entered episode began, as the live engine was told; ``reversals`` is
    ``reversals_after`` the ledger, taken back at the same points."""
    decisions = _replay(outcomes, book, episode_starts or {}, registry, reversals or {})
    return {decision.key: decision for decision in decisions if decision.key is not None}


@dataclass(frozen=True, slots=True)
class Want:
    """What reconciliation compares of an expected claim: all it keeps of each, so that
    a million outcome events do not hold a million full decisions (their reasons and
    evidence) at once."""

    status: str
    cap: str | None
    amount_pence: int
    shares: tuple[tuple[str, int], ...]
    rate_card_version: str | None

    @classmethod
    def of(cls, d: ClaimDecision) -> Want:
        return cls(d.status, d.cap, d.amount_pence, d.shares, d.rate_card_version)


def _replay(
    outcomes: Iterable[tuple[str, OutcomeEvent]],
    book: RateCardBook,
    starts: Mapping[tuple[str, int], datetime],
    registry: Registry | None,
    undo: Mapping[str, Sequence[ClaimKey]],
) -> Iterator[ClaimDecision]:
    """Each recorded decision in order; a later one for the same key replaces it."""
    # Running totals, not a re-sum of every earlier claim per outcome: that was quadratic
    # (a million outcome events would never have reconciled).
    totals = Totals()
    # The latest decision of each claim the ledger reversed, to take back when it did.
    reversible = {key for keys in undo.values() for key in keys}
    latest: dict[ClaimKey, ClaimRecord] = {}

    def take_back(after: str) -> None:
        for key in undo.get(after, ()):
            record = latest.get(key)
            if record is not None and record.status == "claimed":
                totals.reverse(record)

    take_back(BEFORE_ANY)
    for event_id, outcome in outcomes:
        started = starts.get((outcome.referral_id, outcome.episode))
        for contract_id in book.contracts_for(outcome.partner_id):
            decision = decide_with_totals(
                book, contract_id, event_id, outcome, totals, started, registry
            )
            if not decision.recorded or decision.key is None:
                continue
            record = _as_record(decision)
            if decision.key in reversible:
                latest[decision.key] = record
            totals.add(record)
            yield decision
        take_back(event_id)


def reconcile(
    outcomes: Iterable[tuple[str, OutcomeEvent]],
    book: RateCardBook,
    ledger_claims: Mapping[ClaimKey, ClaimRecord],
    episode_starts: Mapping[tuple[str, int], datetime] | None = None,
    registry: Registry | None = None,
    reversals: Mapping[str, Sequence[ClaimKey]] | None = None,
) -> list[Discrepancy]:
    """Every difference between the recomputed claims and the ledger's
    (``entries.current_claims``), sorted by claim; pass ``reversals_after`` the same
    ledger's entries whenever it holds reversals."""
    decisions = _replay(outcomes, book, episode_starts or {}, registry, reversals or {})
    expected = {d.key: Want.of(d) for d in decisions if d.key is not None}
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


def _compare(key: ClaimKey, want: Want, have: ClaimRecord) -> list[Discrepancy]:
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
    elif want.status == "claimed" and want.shares != have.shares:
        parts = ", ".join(f"{payer} £{pounds(pence)}" for payer, pence in want.shares)
        detail = f"the split between payers should be {parts or 'none (one payer)'}"
        rows.append(_row(key, "split_differs", want, have, detail))
    if want.rate_card_version != have.rate_card_version:
        detail = f"should be priced with rate card version {want.rate_card_version}"
        rows.append(_row(key, "rate_card_differs", want, have, detail))
    return rows


def _row(
    key: ClaimKey,
    problem: Problem,
    want: Want | None,
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
        shares=decision.shares,
    )
