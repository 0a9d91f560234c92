"""What the payment engine answers with: claims, their evidence trails, ledger entries,
checkpoints and reconciliation reports. Pseudonymous ids, codes and amounts in pence
only, never personal data; the API serves these models as they are."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from payments.ledger import Checkpoint
from payments.ratecard import pounds
from payments.statements import PayerStatement, Statement, Totals


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
    # for a metric claimable only at the contract end: the day it may be validated from
    claimable_from: date | None = None
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


class Amounts(BaseModel):
    claims: int
    capped: int
    claimed_pence: int
    approved_pence: int
    paid_pence: int
    reversed_pence: int
    net_pence: int
    net_gbp: str

    @classmethod
    def of(cls, t: Totals) -> Amounts:
        return cls(
            **{name: getattr(t, name) for name in cls.model_fields if name != "net_gbp"},
            net_gbp=pounds(t.net_pence),
        )


class StatementView(BaseModel):
    contract_id: str
    partner_id: str
    period: str
    cap_pence: int | None  # the partner's monthly cap, from the rate card version
    headroom_pence: int | None
    total: Amounts
    metrics: dict[str, Amounts]

    @classmethod
    def of(cls, s: Statement) -> StatementView:
        return cls(
            contract_id=s.contract_id,
            partner_id=s.partner_id,
            period=s.period,
            cap_pence=s.cap_pence,
            headroom_pence=s.headroom_pence,
            total=Amounts.of(s.total),
            metrics={m: Amounts.of(t) for m, t in sorted(s.metrics.items())},
        )


class PayerStatementView(BaseModel):
    contract_id: str
    payer_id: str  # a rate card's payer id, or "commissioner" for a single-payer contract
    period: str
    total: Amounts

    @classmethod
    def of(cls, s: PayerStatement) -> PayerStatementView:
        return cls(
            contract_id=s.contract_id,
            payer_id=s.payer_id,
            period=s.period,
            total=Amounts.of(s.total),
        )


class Verification(BaseModel):
    ok: bool
    first_broken_seq: int | None
    reason: str
    head_seq: int
    head_hash: str | None
    checked_at: datetime
