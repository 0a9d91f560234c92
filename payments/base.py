"""What every part of the payment engine shares: its configuration, the ledger
repository, and how one claim's entries are found, folded and shown.

``payments.engine.PaymentEngine`` puts the parts together (``lifecycle``, ``queries``,
``reconciliation``, ``integrity``); each part is a class over ``EngineBase`` so that
they share one constructor and one ledger repository (whose fold is cached per engine).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from events.catalogue import model_for
from events.envelope import CloudEvent
from events.outcome import EngagementAchieved, OutcomeEvent, SustainedReviewed, WellbeingReviewed
from events.referral import MeasureScores
from pathway.measures import Registry, default_registry
from payments import store
from payments.claims import ClaimRecord, claim_id
from payments.entries import current_claims
from payments.errors import RateCardError, UnknownClaim
from payments.ledger import LedgerEntry
from payments.ratebook import RateCardBook
from payments.views import ClaimView

ENGINE_ACTOR = "payments-engine"  # the claimant of every claim the engine makes
PATHWAY_ACTOR = "pathway"  # the identity the pathway's facts are stated under
SOURCE = "urn:linkway:payments"


class EngineBase:
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

    @staticmethod
    def _producers(record: ClaimRecord) -> set[str]:
        return {record.partner_id, PATHWAY_ACTOR}

    def _own(self, session: Session, claim: str) -> list[LedgerEntry]:
        own = self._ledger.entries(session, claim=claim)
        if not own:
            raise UnknownClaim(f"no claim {claim}")
        return own

    def _claimable_from(self, record: ClaimRecord) -> date | None:
        """The contract end date for a metric claimable only then: shown on the claim so
        nobody mistakes an accrued end-only claim for one that can be validated now."""
        try:
            card = self.book.version(record.key.contract_id, record.rate_card_version)
        except RateCardError:
            return None
        metric = card.metrics.get(record.key.metric)
        return card.end_date if metric is not None and metric.claimable_only_at_end else None

    def _view(self, own: list[LedgerEntry]) -> ClaimView:
        record = record_of(own)
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
            claimable_from=self._claimable_from(record),
            claimant_id=record.claimant_id,
            validator_id=record.validator_id,
            approver_ids=list(record.approver_ids),
            approvals_needed=2 if record.amount_pence > threshold else 1,
            evidence_event_ids=list(record.evidence_event_ids),
            first_seq=own[0].seq,
            last_seq=own[-1].seq,
        )


def record_of(own: list[LedgerEntry]) -> ClaimRecord:
    """One claim's entries folded into its current record."""
    (record,) = current_claims(own).values()
    return record


def made_entry(own: list[LedgerEntry]) -> LedgerEntry:
    """The entry that made the claim (claimed or capped): it holds the evidence."""
    return next(e for e in reversed(own) if e.kind in ("claimed", "capped"))


def outcome_of(envelope: CloudEvent | None) -> OutcomeEvent | None:
    if envelope is None:
        return None
    data = model_for(envelope.type).model_validate(envelope.data)
    return data if isinstance(data, OutcomeEvent) else None


def measures_of(outcome: OutcomeEvent) -> list[MeasureScores]:
    if isinstance(outcome, EngagementAchieved):
        return list(outcome.baseline)
    if isinstance(outcome, WellbeingReviewed | SustainedReviewed):
        return [m for p in outcome.pairs for m in (p.baseline, p.followup)]
    return []
