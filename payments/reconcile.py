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

Memory, for a national contract year of millions of claims: each side keeps only what
it compares (``Want``, ``Have``; equal expected ones shared, key strings interned), the running
totals keep no claim (``history.Totals``), and ``reconcile_in_key_order`` holds the
expected side alone: the ledger, read sorted by claim key, is folded and compared one
claim at a time. About 350 bytes a claim (docs/benchmarks.md, P5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from sys import intern
from typing import Literal, NamedTuple, Protocol

from events.outcome import OutcomeEvent
from pathway.measures import Registry
from payments.claims import FIRST_APPROVAL, ClaimKey, ClaimRecord, idempotency_key
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


def claims_in_key_order(entries: Iterable[EntryBody]) -> Iterator[tuple[ClaimKey, Have]]:
    """What reconciliation compares of each claim as it stands (``Have``, folded as
    ``entries.current_claims`` folds the records), one claim at a time, holding none,
    from entries sorted by claim key (each claim's own entries in ledger order:
    ``LedgerRepository.by_claim_key``). Raises ``ValueError`` if they are not in that
    order."""
    key: ClaimKey | None = None
    have: Have | None = None
    for entry in entries:
        k = ClaimKey(entry.contract_id, entry.referral_id, entry.episode, entry.metric)
        if k != key:
            if key is not None and have is not None:
                if k < key:
                    raise ValueError(f"the ledger is not in claim-key order: {k} after {key}")
                yield key, have
            key, have = k, None
        have = _fold(k, have, entry)
    if key is not None and have is not None:
        yield key, have


def _fold(key: ClaimKey, found: Have | None, entry: EntryBody) -> Have:
    """One entry applied to what is kept of its claim, as ``current_claims`` applies it
    to the whole record."""
    if entry.kind in ("claimed", "capped") and (found is None or found.status == "capped"):
        # a new claim, or a capped one re-evaluated: the entry states it afresh
        return Have(entry.kind, entry.amount_pence, entry.shares, entry.rate_card_version)
    if found is None:
        raise ValueError(f"a {entry.kind} entry for {key} comes before the claim itself")
    if entry.kind == FIRST_APPROVAL:
        return found
    return found._replace(status=entry.kind)


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


class Want(NamedTuple):
    """What reconciliation compares of an expected claim: all it keeps of each, so that
    a million outcome events do not hold a million full decisions (their reasons and
    evidence) at once; equal ones are shared (``_expected``)."""

    status: str
    cap: str | None
    amount_pence: int
    shares: tuple[tuple[str, int], ...]
    rate_card_version: str | None

    @classmethod
    def of(cls, d: ClaimDecision) -> Want:
        return cls(d.status, d.cap, d.amount_pence, d.shares, d.rate_card_version)


class Have(NamedTuple):
    """What reconciliation compares of a claim in the ledger (``claims_in_key_order``)."""

    status: str
    amount_pence: int
    shares: tuple[tuple[str, int], ...]
    rate_card_version: str


class Compared(Protocol):
    """The ledger's side of a comparison: a ``Have``, or a whole ``ClaimRecord``."""

    @property
    def status(self) -> str: ...
    @property
    def amount_pence(self) -> int: ...
    @property
    def shares(self) -> tuple[tuple[str, int], ...]: ...
    @property
    def rate_card_version(self) -> str: ...


def _key(contract_id: str, referral_id: str, episode: int, metric: str) -> ClaimKey:
    """A claim key whose strings are shared with every other key naming them (a referral
    has several claims, and both sides of reconciliation hold each)."""
    return ClaimKey(intern(contract_id), intern(referral_id), episode, intern(metric))


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
    ledger_claims: Mapping[ClaimKey, Compared],
    episode_starts: Mapping[tuple[str, int], datetime] | None = None,
    registry: Registry | None = None,
    reversals: Mapping[str, Sequence[ClaimKey]] | None = None,
) -> list[Discrepancy]:
    """Every difference between the recomputed claims and the ledger's
    (``Have``s from ``claims_in_key_order``, or ``entries.current_claims``), sorted by
    claim; pass
    ``reversals_after`` the same ledger's entries whenever it holds reversals."""
    expected = _expected(outcomes, book, episode_starts, registry, reversals)
    found: list[Discrepancy] = []
    for key, want in expected.items():
        found.extend(_rows(key, want, ledger_claims.get(key)))
    for key, have in ledger_claims.items():
        if key not in expected:
            found.extend(_rows(key, None, have))
    # Stable: a claim's own rows keep the order ``_compare`` gave them.
    return sorted(found, key=lambda d: d.key)


def reconcile_in_key_order(
    outcomes: Iterable[tuple[str, OutcomeEvent]],
    book: RateCardBook,
    ledger_in_key_order: Callable[[], Iterable[EntryBody]],
    episode_starts: Mapping[tuple[str, int], datetime] | None = None,
    registry: Registry | None = None,
    reversals: Mapping[str, Sequence[ClaimKey]] | None = None,
) -> tuple[list[Discrepancy], int]:
    """``reconcile`` against the ledger's entries sorted by claim key, read (by calling
    ``ledger_in_key_order``) once the outcomes are decided, and merged with the expected
    claims in the same order: each ledger claim is folded, compared and dropped, so only
    the expected side is held. Returns the discrepancies and the ledger's claim count."""
    expected = _expected(outcomes, book, episode_starts, registry, reversals)
    keys = sorted(expected)
    found: list[Discrepancy] = []
    claims = at = 0
    for key, have in claims_in_key_order(ledger_in_key_order()):
        claims += 1
        while at < len(keys) and keys[at] < key:  # expected, and not in the ledger
            found.extend(_rows(keys[at], expected[keys[at]], None))
            at += 1
        if at < len(keys) and keys[at] == key:
            found.extend(_rows(key, expected[key], have))
            at += 1
        else:
            found.extend(_rows(key, None, have))
    for key in keys[at:]:
        found.extend(_rows(key, expected[key], None))
    return found, claims


def _expected(
    outcomes: Iterable[tuple[str, OutcomeEvent]],
    book: RateCardBook,
    episode_starts: Mapping[tuple[str, int], datetime] | None,
    registry: Registry | None,
    reversals: Mapping[str, Sequence[ClaimKey]] | None,
) -> dict[ClaimKey, Want]:
    """What is compared of each expected claim, the latest decision for each key, equal
    ``Want``s shared."""
    expected: dict[ClaimKey, Want] = {}
    pool: dict[Want, Want] = {}
    for d in _replay(outcomes, book, episode_starts or {}, registry, reversals or {}):
        assert d.key is not None  # _replay yields recorded decisions only
        want = Want.of(d)
        expected[_key(*d.key)] = pool.setdefault(want, want)
    return expected


def _rows(key: ClaimKey, want: Want | None, have: Compared | None) -> list[Discrepancy]:
    if want is None:
        if have is None:
            return []
        return [_row(key, "unexpected", None, have, "no outcome event earns this claim")]
    if have is None:
        return [_row(key, "missing", want, None, f"should be {want.status}")]
    return _compare(key, want, have)


def _compare(key: ClaimKey, want: Want, have: Compared) -> list[Discrepancy]:
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
    have: Compared | None,
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
