"""The payment engine: outcome events in, claims in the ledger, the contract manager's
decisions on them, and the reads a contract manager audits with.

Every write holds the ledger lock (``store.LedgerRepository.lock``) and stages, in the
same transaction, the ledger entries and one ``ClaimStatusChanged`` per status change on
``linkway.payments`` (a first approval of a claim that needs two changes no status, so
it announces nothing). ``handle_outcome`` writes in the caller's transaction, so a
consumer commits its processed-event record with them and only then its offset; the
lifecycle commands each run one transaction of their own.

Separation of duties (``payments.duties``): events carry no per-measurement identities,
so the evidence producers of a claim are the Tier One partner it pays and ``pathway``
(the identity the pathway's facts are stated under); the claimant is the identity on
the claim's first entry (``payments-engine``). None of them may validate, approve,
dispute, resolve or pay it; an approver is not its validator; a claim above
``second_approval_above_pence`` needs two different approvers.

Errors::

    PaymentError
    ├── UnknownClaim     no claim has that id
    ├── DutyConflict     separation of duties forbids this identity
    ├── ClaimInvalid     validation found problems (``problems`` lists them all)
    └── LedgerBroken     the stored chain does not verify, so it cannot be checkpointed

and ``payments.claims.IllegalTransition`` when the lifecycle does not allow the move.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import Engine
from sqlmodel import Session

from events import outbox, topics
from events.catalogue import model_for
from events.envelope import CloudEvent
from events.outcome import (
    OUTCOME_TYPES,
    EngagementAchieved,
    OutcomeEvent,
    SustainedReviewed,
    WellbeingReviewed,
)
from events.payment import ClaimStatusChanged
from events.referral import MeasureScores, ReferralReentered
from infra.db import transaction
from pathway.measures import Registry, default_registry
from payments import store
from payments.claims import FIRST_APPROVAL, ClaimKey, ClaimRecord, claim_id, transition
from payments.duties import DutyCheck, check_approver, check_validator
from payments.entries import claim_entry, current_claims, transition_entry
from payments.evidence import assess
from payments.history import History
from payments.ledger import Checkpoint, LedgerEntry, VerifyResult, make_checkpoint, verify
from payments.ledger import verify_against_checkpoint as verify_held
from payments.ratebook import RateCardBook
from payments.ratecard import RateCardError
from payments.reconcile import reconcile
from payments.rules import ClaimDecision, decide_in_book
from payments.statements import Statement, statements, to_csv
from payments.validation import validate_claim

ENGINE_ACTOR = "payments-engine"  # the claimant of every claim the engine makes
PATHWAY_ACTOR = "pathway"  # the identity the pathway's facts are stated under
SOURCE = "urn:linkway:payments"
_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# A lifecycle step's checks: given the claim, the entry kind to write, or raise.
_Check = Callable[[Session, ClaimRecord, list[LedgerEntry]], str]


class PaymentSettings(BaseSettings):
    """The engine's settings (``LINKWAY_PAYMENTS_*``)."""

    model_config = SettingsConfigDict(env_prefix="LINKWAY_PAYMENTS_", extra="ignore")

    # HMAC key for ledger checkpoints, held with the contract manager. Empty only in the
    # embedded default: a key is generated once under the data directory.
    checkpoint_key: str = ""
    second_approval_above_pence: int = Field(default=50_000, ge=0)
    rate_cards: str = ""  # comma-separated files or directories; empty: the packaged ones
    checkpoint_every_entries: int = Field(default=1_000, ge=1)

    def book(self) -> RateCardBook:
        paths = [Path(p.strip()) for p in self.rate_cards.split(",") if p.strip()]
        return RateCardBook.load(*paths) if paths else RateCardBook.packaged()

    def key(self, data_dir: Path) -> bytes:
        if self.checkpoint_key:
            return self.checkpoint_key.encode()
        path = Path(data_dir) / "ledger-checkpoint.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)  # never readable by others, not even briefly
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip().encode()


class PaymentError(Exception):
    pass


class UnknownClaim(PaymentError, LookupError):
    pass


class DutyConflict(PaymentError):
    pass


class LedgerBroken(PaymentError):
    pass


class ClaimInvalid(PaymentError):
    def __init__(self, claim: str, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"claim {claim} fails validation: " + "; ".join(self.problems))


# --- what the engine answers with (pseudonymous ids and codes only) ------------------------


class ClaimView(BaseModel):
    claim_id: str
    contract_id: str
    referral_id: str
    episode: int
    metric: str
    partner_id: str
    period: str
    occurred_at: datetime
    status: str
    statuses: list[str]
    amount_pence: int
    rate_card_version: str
    cap: str | None  # the rate-card field a capped claim would have exceeded
    claimant_id: str
    validator_id: str | None
    approver_ids: list[str]
    approvals_needed: int
    evidence_event_ids: list[str]
    first_seq: int
    last_seq: int


class ClaimPage(BaseModel):
    items: list[ClaimView]
    next_cursor: str | None  # pass back as ``after`` for the next page


class EntryView(BaseModel):
    seq: int
    kind: str
    amount_pence: int
    actor_id: str
    reason: str
    recorded_at: datetime
    prev_hash: str
    hash: str


class EventView(BaseModel):
    event_id: str
    found: bool  # in the engine's event store or Linkway's outbox
    type: str | None = None
    source: str | None = None
    time: datetime | None = None


class MeasurementView(BaseModel):
    measurement_id: str
    instrument: str
    version: str
    raw: dict[str, float]
    derived: dict[str, str | float]
    administered_at: datetime
    counted: bool  # one of the measurements that met the rule


class RateCardTerms(BaseModel):
    contract_id: str
    version: str
    effective_from: date
    metric: str
    metric_name: str
    price_pence: int
    rule: dict[str, Any]


class EvidenceTrail(BaseModel):
    claim: ClaimView
    rule_met: str  # the evidence rule's verdict, recomputed from the stored outcome
    rate_card: RateCardTerms | None
    events: list[EventView]
    measurements: list[MeasurementView]
    entries: list[EntryView]


class SignedCheckpoint(BaseModel):
    seq: int
    head_hash: str
    signature: str
    actor_id: str
    created_at: datetime

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.seq, self.head_hash, self.signature)


class DiscrepancyView(BaseModel):
    claim_id: str
    contract_id: str
    referral_id: str
    episode: int
    metric: str
    problem: str
    expected_status: str | None
    actual_status: str | None
    expected_pence: int | None
    actual_pence: int | None
    detail: str


class Reconciliation(BaseModel):
    ok: bool
    outcome_events: int
    expected_claims: int
    ledger_claims: int
    discrepancies: list[DiscrepancyView]


class PaymentEngine:
    def __init__(
        self,
        engine: Engine,
        book: RateCardBook,
        checkpoint_key: bytes,
        second_approval_above_pence: int,
        *,
        registry: Registry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        source: str = SOURCE,
        checkpoint_every: int = 1_000,
    ) -> None:
        if not checkpoint_key:
            raise ValueError("the payment engine needs a checkpoint key")
        self.engine, self.book, self.registry = engine, book, registry or default_registry()
        self.second_approval_above_pence = second_approval_above_pence
        self._key, self._clock, self._source = checkpoint_key, clock, source
        self.checkpoint_every = checkpoint_every
        self._ledger = store.LedgerRepository()

    @classmethod
    def from_settings(
        cls, engine: Engine, settings: PaymentSettings, data_dir: Path
    ) -> PaymentEngine:
        return cls(
            engine,
            settings.book(),
            settings.key(data_dir),
            settings.second_approval_above_pence,
            checkpoint_every=settings.checkpoint_every_entries,
        )

    # --- consuming ------------------------------------------------------------------------

    def handle_outcome(
        self, session: Session, envelope: CloudEvent, data: OutcomeEvent
    ) -> list[ClaimDecision]:
        """Decide the outcome under every contract paying its partner, in the caller's
        transaction. A redelivered event id decides nothing and returns ``[]``; a claim
        key already in the ledger (a second outcome for the same claim, claimed or
        capped) gets no entry and is answered ``not_eligible``."""
        if envelope.type != data.TYPE:
            raise ValueError(f"envelope type {envelope.type} does not match {data.TYPE}")
        self._ledger.lock(session)
        if not store.record_event(
            session, envelope, data.referral_id, data.episode, data.occurred_at
        ):
            return []
        claims = self._ledger.claims(session)
        starts = store.episode_starts(session, ReferralReentered.TYPE, data.referral_id)
        started = starts.get((data.referral_id, data.episode))
        decisions: list[ClaimDecision] = []
        for contract in self.book.contracts_for(data.partner_id):
            made = decide_in_book(
                self.book, contract, envelope.id, data, claims.values(), started, self.registry
            )
            if made.recorded and made.key in claims:
                found = claims[made.key].status
                reason = f"{made.key.metric} is already in the ledger for this episode ({found})"
                made = replace(made, status="not_eligible", amount_pence=0, cap=None, reason=reason)
            elif made.recorded:
                entry = self._ledger.append(session, claim_entry(made, ENGINE_ACTOR, self._clock()))
                self._announce(session, entry)
            decisions.append(made)
        return decisions

    def handle_reentry(
        self, session: Session, envelope: CloudEvent, data: ReferralReentered
    ) -> bool:
        """Store when a re-entered episode began, for the re-entry exclusion window; in the
        caller's transaction. False for a redelivery. Without it the window is counted
        to the outcome's date instead of the episode's start."""
        self._ledger.lock(session)
        return store.record_event(
            session, envelope, data.referral_id, data.episode, data.occurred_at
        )

    # --- the lifecycle: one transaction each ----------------------------------------------

    def validate(self, claim: str, actor_id: str) -> ClaimView:
        """claimed -> validated, when the evidence holds: the events exist, the outcome
        still meets the rate card the claim was priced with, consent is on record, the
        outcome is inside the contract and the caps still hold."""

        def check(session: Session, record: ClaimRecord, own: list[LedgerEntry]) -> str:
            self._allow(check_validator(record, actor_id, self._producers(record)))
            problems = self._problems(session, record, own)
            if problems:
                raise ClaimInvalid(claim, problems)
            return "validated"

        return self._move(claim, "validated", actor_id, check)

    def approve(self, claim: str, actor_id: str) -> ClaimView:
        """validated -> approved; above the threshold the first approval is recorded and
        the claim stays validated until a different second approver approves it."""

        def check(_: Session, record: ClaimRecord, __: list[LedgerEntry]) -> str:
            duty = check_approver(
                record, actor_id, self._producers(record), self.second_approval_above_pence
            )
            self._allow(duty)
            return "approved" if duty.complete else FIRST_APPROVAL

        return self._move(claim, "approved", actor_id, check)

    def dispute(self, claim: str, actor_id: str, reason_code: str) -> ClaimView:
        check = self._clear("dispute", "disputed", actor_id)
        return self._move(claim, "disputed", actor_id, check, reason_code)

    def resolve(
        self, claim: str, actor_id: str, outcome: Literal["upheld", "reversed"]
    ) -> ClaimView:
        """disputed -> upheld (the claim resumes where it was) or reversed (an entry with
        the amount negated; final)."""
        if outcome not in ("upheld", "reversed"):
            raise ValueError("a dispute is resolved as upheld or reversed")
        return self._move(claim, outcome, actor_id, self._clear("resolve", outcome, actor_id))

    def mark_paid(self, claim: str, actor_id: str, payment_ref: str) -> ClaimView:
        return self._move(
            claim, "paid", actor_id, self._clear("pay", "paid", actor_id), payment_ref
        )

    # --- reads ----------------------------------------------------------------------------

    def claims(
        self,
        contract_id: str | None = None,
        partner_id: str | None = None,
        status: str | None = None,
        metric: str | None = None,
        period: str | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> ClaimPage:
        """Claims in the order they were made, filtered; ``after`` is a page's cursor."""
        wanted = dict(
            contract_id=contract_id,
            partner_id=partner_id,
            status=status,
            metric=metric,
            period=period,
        )
        with Session(self.engine) as session:
            groups = _by_claim(self._ledger.entries(session))
        items: list[ClaimView] = []
        for own in groups.values():
            if after is not None and own[0].seq <= after:
                continue
            view = self._view(own)
            if _matches(view, wanted):
                items.append(view)
                if len(items) > limit:
                    break
        more = len(items) > limit
        return ClaimPage(
            items=items[:limit], next_cursor=str(items[limit - 1].first_seq) if more else None
        )

    def claim(self, claim: str) -> ClaimView:
        with Session(self.engine) as session:
            return self._view(self._own(session, claim))

    def evidence(self, claim: str) -> EvidenceTrail:
        """The events, measurements and rate-card terms behind a claim, and its entries."""
        with Session(self.engine) as session:
            own = self._own(session, claim)
            view = self._view(own)
            made = next(e for e in reversed(own) if e.kind in ("claimed", "capped"))
            ids = list(made.evidence_event_ids)
            stored = {env.id: env for env in store.consumed(session, ids=ids)}
            mine = {row.event_id: row for row in store.published(session, ids)}
        events = [_event_view(event_id, stored, mine) for event_id in ids]
        outcome = _outcome(stored.get(ids[0])) if ids else None
        terms, verdict = None, "the outcome event is not in the event store"
        try:
            card = self.book.version(view.contract_id, view.rate_card_version)
        except RateCardError as exc:
            verdict = str(exc)
        else:
            metric = card.metrics[view.metric]
            rule = metric.model_dump(
                include={"min_sessions", "instruments", "claimable_only_at_end", "max_per_person"}
            )
            terms = RateCardTerms(
                contract_id=card.contract_id,
                version=card.version,
                effective_from=card.effective_from,
                metric=view.metric,
                metric_name=metric.name,
                price_pence=metric.price_pence,
                rule=rule,
            )
            if outcome is not None:
                verdict = assess(outcome, metric, self.registry).detail
        counted = set(made.measurement_ids)
        measures = [
            MeasurementView(**m.model_dump(), counted=m.measurement_id in counted)
            for m in (_measures(outcome) if outcome else [])
        ]
        return EvidenceTrail(
            claim=view,
            rule_met=verdict,
            rate_card=terms,
            events=events,
            measurements=measures,
            entries=[EntryView(**e.model_dump(include=set(EntryView.model_fields))) for e in own],
        )

    def statements(
        self,
        period: str | None = None,
        partner_id: str | None = None,
        contract_id: str | None = None,
    ) -> list[Statement]:
        """Per contract, partner and month: claimed, approved, paid, reversed, net, cap."""
        with Session(self.engine) as session:
            entries = self._ledger.entries(session)
        wanted = dict(period=period, partner_id=partner_id, contract_id=contract_id)
        return statements([e for e in entries if _matches(e, wanted)], self.book)

    def statements_csv(
        self,
        period: str | None = None,
        partner_id: str | None = None,
        contract_id: str | None = None,
    ) -> str:
        return to_csv(self.statements(period, partner_id, contract_id))

    def reconcile(self) -> Reconciliation:
        """Recompute the claims from the consumed outcome events, in consumed order, and
        list every difference from the ledger, to the penny."""
        with Session(self.engine) as session:
            history = store.consumed(session, types=OUTCOME_TYPES)
            starts = store.episode_starts(session, ReferralReentered.TYPE)
            ledger = current_claims(self._ledger.entries(session))
        outcomes = [(env.id, o) for env in history if (o := _outcome(env)) is not None]
        found = reconcile(outcomes, self.book, ledger, starts, self.registry)
        rows = [
            DiscrepancyView(claim_id=claim_id(d.key), **d.key._asdict(), **_plain(d)) for d in found
        ]
        problems = [d.problem for d in found]
        return Reconciliation(
            ok=not rows,
            outcome_events=len(outcomes),
            expected_claims=len(ledger) - problems.count("unexpected") + problems.count("missing"),
            ledger_claims=len(ledger),
            discrepancies=rows,
        )

    # --- the ledger's integrity -----------------------------------------------------------

    def head(self) -> LedgerEntry | None:
        with Session(self.engine) as session:
            return self._ledger.head(session)

    def verify(self) -> VerifyResult:
        """Recompute the stored chain; name the first entry that does not fit."""
        with Session(self.engine) as session:
            entries, unreadable = self._ledger.chain(session)
        result = verify(entries)
        if result.ok and unreadable is not None:
            return VerifyResult(False, unreadable.seq, str(unreadable))
        return result

    def checkpoint(self, actor_id: str = ENGINE_ACTOR) -> SignedCheckpoint:
        """Sign the head of a chain that verifies, and keep the signature."""
        with transaction(self.engine) as session:
            self._ledger.lock(session)  # the head cannot move while it is signed
            entries, unreadable = self._ledger.chain(session)
            if unreadable is not None:
                raise LedgerBroken(f"cannot checkpoint a broken ledger: {unreadable}")
            try:
                signed = make_checkpoint(entries, self._key)
            except ValueError as exc:
                raise LedgerBroken(str(exc)) from None
            row = store.add_checkpoint(session, signed, actor_id)
            return SignedCheckpoint.model_validate(row, from_attributes=True)

    def checkpoint_if_due(self, every_entries: int | None = None) -> SignedCheckpoint | None:
        """A checkpoint when the head is ``every_entries`` (default: the engine's
        ``checkpoint_every``) past the last one: the periodic checkpoint."""
        every = every_entries or self.checkpoint_every
        with Session(self.engine) as session:
            head = self._ledger.head(session)
            last = store.last_checkpoint_seq(session)
        if head is None or head.seq - last < every:
            return None
        return self.checkpoint()

    def checkpoints(self) -> list[SignedCheckpoint]:
        with Session(self.engine) as session:
            rows = store.checkpoints(session)
        return [SignedCheckpoint.model_validate(row, from_attributes=True) for row in rows]

    def verify_checkpoint(self, checkpoint: Checkpoint) -> VerifyResult:
        """The stored chain verifies and still holds a checkpoint someone kept."""
        with Session(self.engine) as session:
            entries, unreadable = self._ledger.chain(session)
        result = verify_held(entries, checkpoint, self._key)
        if unreadable is not None and (result.ok or result.first_broken_seq == unreadable.seq):
            return VerifyResult(False, unreadable.seq, str(unreadable))
        return result

    # --- internals ------------------------------------------------------------------------

    def _move(
        self,
        claim: str,
        to: str,
        actor_id: str,
        check: _Check,
        reason: str = "",
    ) -> ClaimView:
        if reason and not _CODE.match(reason):
            raise ValueError("a reason or payment reference is a code: 1-64 of A-Z a-z 0-9 _ . : -")
        with transaction(self.engine) as session:
            self._ledger.lock(session)
            own = self._own(session, claim)
            record = _record(own)
            transition(record.statuses, to)  # the lifecycle's answer comes before the duties'
            kind = check(session, record, own)
            body = transition_entry(record, kind, actor_id, self._clock(), reason)
            entry = self._ledger.append(session, body)
            if kind != FIRST_APPROVAL:
                self._announce(session, entry)
            return self._view([*own, entry])

    def _clear(self, verb: str, kind: str, actor_id: str) -> _Check:
        """The claimant and the evidence producers may not act on a claim (the same
        conflicts as for validating it)."""

        def check(_: Session, record: ClaimRecord, __: list[LedgerEntry]) -> str:
            duty = check_validator(record, actor_id, self._producers(record))
            if not duty.allowed:
                why = duty.reason.split(": ", 1)[-1]
                raise DutyConflict(f"{actor_id} cannot {verb} this claim: {why}")
            return kind

        return check

    @staticmethod
    def _allow(duty: DutyCheck) -> None:
        if not duty.allowed:
            raise DutyConflict(duty.reason)

    @staticmethod
    def _producers(record: ClaimRecord) -> set[str]:
        return {record.partner_id, PATHWAY_ACTOR}

    def _own(self, session: Session, claim: str) -> list[LedgerEntry]:
        own = self._ledger.entries(session, claim=claim)
        if not own:
            raise UnknownClaim(f"no claim {claim}")
        return own

    def _problems(self, session: Session, record: ClaimRecord, own: list[LedgerEntry]) -> list[str]:
        made = next(e for e in reversed(own) if e.kind in ("claimed", "capped"))
        ids = list(record.evidence_event_ids)
        found = store.consumed(session, ids=ids[:1])
        outcome = _outcome(found[0]) if found else None
        if outcome is None:
            return [f"the outcome event {ids[0] if ids else '(none)'} is not in the event store"]
        try:
            card = self.book.version(record.key.contract_id, record.rate_card_version)
        except RateCardError as exc:
            return [str(exc)]
        claims = self._ledger.claims(session)
        starts = store.episode_starts(session, ReferralReentered.TYPE, record.key.referral_id)
        history = History.of(
            claims.values(),
            record.key,
            record.partner_id,
            record.period,
            starts.get((record.key.referral_id, record.key.episode)),
        )
        known = {e.id for e in store.consumed(session, ids=ids)}
        known |= {row.event_id for row in store.published(session, ids)}
        result = validate_claim(record, outcome, card, history, known, self._clock())
        problems = list(result.problems)
        measured = {m.measurement_id for m in _measures(outcome)}
        missing = [m for m in made.measurement_ids if m not in measured]
        if missing:
            problems.append(f"measurements not in the outcome's evidence: {', '.join(missing)}")
        return problems

    def _announce(self, session: Session, entry: LedgerEntry) -> None:
        key = ClaimKey(entry.contract_id, entry.referral_id, entry.episode, entry.metric)
        data = ClaimStatusChanged(
            claim_id=claim_id(key),
            contract_id=entry.contract_id,
            referral_id=entry.referral_id,
            episode=entry.episode,
            metric=entry.metric,
            partner_id=entry.partner_id,
            status=entry.kind,  # first approvals are not announced
            amount_pence=abs(entry.amount_pence),
            rate_card_version=entry.rate_card_version,
            ledger_entry_hash=entry.hash,
            occurred_at=entry.recorded_at,
        )
        envelope = outbox.to_envelope(
            data, entry.referral_id, self._source, entry.entry_id, entry.recorded_at
        )
        outbox.add(session, envelope, topics.PAYMENTS)

    def _view(self, own: list[LedgerEntry]) -> ClaimView:
        record = _record(own)
        capped = next((e.reason for e in reversed(own) if e.kind == "capped"), None)
        threshold = self.second_approval_above_pence
        return ClaimView(
            claim_id=claim_id(record.key),
            **record.key._asdict(),
            partner_id=record.partner_id,
            period=record.period,
            occurred_at=record.occurred_at,
            status=record.status,
            statuses=list(record.statuses),
            amount_pence=record.amount_pence,
            rate_card_version=record.rate_card_version,
            cap=capped if record.status == "capped" else None,
            claimant_id=record.claimant_id,
            validator_id=record.validator_id,
            approver_ids=list(record.approver_ids),
            approvals_needed=2 if record.amount_pence > threshold else 1,
            evidence_event_ids=list(record.evidence_event_ids),
            first_seq=own[0].seq,
            last_seq=own[-1].seq,
        )


def _matches(item: Any, wanted: dict[str, Any]) -> bool:
    return all(v is None or getattr(item, k) == v for k, v in wanted.items())


def _event_view(event_id: str, stored: dict[str, CloudEvent], mine: dict[str, Any]) -> EventView:
    if (env := stored.get(event_id)) is not None:
        return EventView(
            event_id=event_id, found=True, type=env.type, source=env.source, time=env.time
        )
    if (row := mine.get(event_id)) is not None:
        return EventView(event_id=event_id, found=True, type=row.type, time=row.created_at)
    return EventView(event_id=event_id, found=False)


def _by_claim(entries: Iterable[LedgerEntry]) -> dict[ClaimKey, list[LedgerEntry]]:
    groups: dict[ClaimKey, list[LedgerEntry]] = {}
    for e in entries:
        groups.setdefault(ClaimKey(e.contract_id, e.referral_id, e.episode, e.metric), []).append(e)
    return groups


def _record(own: list[LedgerEntry]) -> ClaimRecord:
    (record,) = current_claims(own).values()
    return record


def _outcome(envelope: CloudEvent | None) -> OutcomeEvent | None:
    if envelope is None:
        return None
    data = model_for(envelope.type).model_validate(envelope.data)
    return data if isinstance(data, OutcomeEvent) else None


def _measures(outcome: OutcomeEvent) -> list[MeasureScores]:
    if isinstance(outcome, EngagementAchieved):
        return list(outcome.baseline)
    if isinstance(outcome, WellbeingReviewed | SustainedReviewed):
        return [m for p in outcome.pairs for m in (p.baseline, p.followup)]
    return []


def _plain(d: Any) -> dict[str, Any]:
    fields = ("problem", "expected_status", "actual_status", "expected_pence", "actual_pence")
    return {name: getattr(d, name) for name in (*fields, "detail")}
