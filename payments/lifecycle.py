"""The claim lifecycle: outcome events in, claims in the ledger, and the contract
manager's decisions on them.

``handle_outcome`` and ``handle_reentry`` write in the consumer's transaction, so it
commits its processed-event record with them and only then its offset. The commands
(validate, approve, dispute, resolve, mark_paid) each run one transaction of their own.
Every write holds the ledger lock and stages, in the same transaction, the ledger entries
and one ``ClaimStatusChanged`` per status change on ``linkway.payments`` (a first approval
of a claim that needs two changes no status, so it announces nothing).

Separation of duties (``payments.duties``): the claimant (``payments-engine``) and the
evidence producers (the Tier One partner paid and ``pathway``) may not validate, approve,
dispute, resolve or pay a claim; an approver is not its validator; a claim above
``second_approval_above_pence`` needs two different approvers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from sqlmodel import Session

from events import topics
from events.envelope import CloudEvent
from events.ids import is_id
from events.outcome import OutcomeEvent
from events.payment import ClaimStatusChanged
from events.referral import ReferralReentered
from infra.db import transaction
from messaging import outbox
from payments import event_store
from payments.base import ENGINE_ACTOR, EngineBase, made_entry, measures_of, outcome_of, record_of
from payments.claims import FIRST_APPROVAL, ClaimKey, ClaimRecord, claim_id, transition
from payments.duties import DutyCheck, check_approver, check_validator
from payments.entries import claim_entry, transition_entry
from payments.errors import ClaimInvalid, DutyConflict, InvalidValue, RateCardError
from payments.history import History
from payments.ledger import LedgerEntry
from payments.rules import ClaimDecision, decide_in_book
from payments.validation import validate_claim
from payments.views import ClaimView

# A lifecycle step's checks: given the claim, the entry kind to write, or raise.
_Check = Callable[[Session, ClaimRecord, list[LedgerEntry]], str]


class ClaimLifecycle(EngineBase):
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
        if not event_store.record_event(
            session, envelope, data.referral_id, data.episode, data.occurred_at
        ):
            return []
        claims = self._ledger.claims(session)
        starts = event_store.episode_starts(session, ReferralReentered.TYPE, data.referral_id)
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
        return event_store.record_event(
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
            raise InvalidValue("a dispute is resolved as upheld or reversed")
        return self._move(claim, outcome, actor_id, self._clear("resolve", outcome, actor_id))

    def mark_paid(self, claim: str, actor_id: str, payment_ref: str) -> ClaimView:
        return self._move(
            claim, "paid", actor_id, self._clear("pay", "paid", actor_id), payment_ref
        )

    # --- internals ------------------------------------------------------------------------

    def _move(
        self,
        claim: str,
        to: str,
        actor_id: str,
        check: _Check,
        reason: str = "",
    ) -> ClaimView:
        if reason and not is_id(reason):
            raise InvalidValue(
                "a reason or payment reference is a code: 1-64 of A-Z a-z 0-9 _ . : -"
            )
        with transaction(self.engine) as session:
            self._ledger.lock(session)
            own = self._own(session, claim)
            record = record_of(own)
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

    def _problems(self, session: Session, record: ClaimRecord, own: list[LedgerEntry]) -> list[str]:
        made = made_entry(own)
        ids = list(record.evidence_event_ids)
        found = event_store.consumed(session, ids=ids[:1])
        outcome = outcome_of(found[0]) if found else None
        if outcome is None:
            return [f"the outcome event {ids[0] if ids else '(none)'} is not in the event store"]
        try:
            card = self.book.version(record.key.contract_id, record.rate_card_version)
        except RateCardError as exc:
            return [str(exc)]
        claims = self._ledger.claims(session)
        starts = event_store.episode_starts(session, ReferralReentered.TYPE, record.key.referral_id)
        history = History.of(
            claims.values(),
            record.key,
            record.partner_id,
            record.period,
            starts.get((record.key.referral_id, record.key.episode)),
        )
        known = {e.id for e in event_store.consumed(session, ids=ids)}
        known |= {row.event_id for row in event_store.published(session, ids)}
        result = validate_claim(record, outcome, card, history, known, self._clock())
        problems = list(result.problems)
        measured = {m.measurement_id for m in measures_of(outcome)}
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
