"""Between claims and the ledger: the entry a decision or a lifecycle move writes, and
the claims as they stand after a run of entries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from payments.claims import FIRST_APPROVAL, ClaimKey, ClaimRecord, transition
from payments.ledger import EntryBody, LedgerEntry
from payments.payers import negated
from payments.rules import ClaimDecision


def claim_entry(decision: ClaimDecision, actor_id: str, recorded_at: datetime) -> EntryBody:
    """The entry that records a claimed or capped decision (not-eligible ones have none)."""
    if not decision.recorded or decision.key is None or decision.occurred_at is None:
        raise ValueError(f"a {decision.status} decision is not recorded in the ledger")
    key = decision.key
    return EntryBody(
        contract_id=key.contract_id,
        referral_id=key.referral_id,
        episode=key.episode,
        metric=key.metric,
        partner_id=decision.partner_id,
        period=decision.period,
        kind=decision.status,
        amount_pence=decision.amount_pence,
        rate_card_version=decision.rate_card_version or "",
        evidence_event_ids=decision.evidence_event_ids,
        measurement_ids=decision.measurement_ids,
        reason=decision.cap or "",
        shares=decision.shares,
        actor_id=actor_id,
        occurred_at=decision.occurred_at,
        recorded_at=recorded_at,
    )


def transition_entry(
    claim: ClaimRecord, to: str, actor_id: str, recorded_at: datetime, reason: str = ""
) -> EntryBody:
    """The entry that moves a claim on; raises ``IllegalTransition`` for a move its
    history does not allow. A reversal carries the claim's amount negated."""
    statuses = claim.statuses or (claim.status,)
    if to == FIRST_APPROVAL:
        transition(statuses, "approved")  # a first approval needs approval to be allowed
    else:
        transition(statuses, to)
    key = claim.key
    return EntryBody(
        contract_id=key.contract_id,
        referral_id=key.referral_id,
        episode=key.episode,
        metric=key.metric,
        partner_id=claim.partner_id,
        period=claim.period,
        kind=to,
        amount_pence=-claim.amount_pence if to == "reversed" else claim.amount_pence,
        rate_card_version=claim.rate_card_version,
        evidence_event_ids=claim.evidence_event_ids,
        reason=reason,
        shares=negated(claim.shares) if to == "reversed" else claim.shares,
        actor_id=actor_id,
        occurred_at=claim.occurred_at,
        recorded_at=recorded_at,
    )


def current_claims(entries: Iterable[LedgerEntry | EntryBody]) -> dict[ClaimKey, ClaimRecord]:
    """Every claim as it stands after these entries (in ledger order)."""
    claims: dict[ClaimKey, ClaimRecord] = {}
    for entry in entries:
        key = ClaimKey(entry.contract_id, entry.referral_id, entry.episode, entry.metric)
        found = claims.get(key)
        if entry.kind in ("claimed", "capped") and (found is None or found.status == "capped"):
            # a new claim, or a capped one re-evaluated: the entry states it afresh
            claims[key] = ClaimRecord(
                key=key,
                partner_id=entry.partner_id,
                period=entry.period,
                occurred_at=entry.occurred_at,
                status=entry.kind,
                amount_pence=entry.amount_pence,
                rate_card_version=entry.rate_card_version,
                evidence_event_ids=entry.evidence_event_ids,
                shares=entry.shares,
                statuses=(*(found.statuses if found else ()), entry.kind),
                claimant_id=entry.actor_id,
            )
            continue
        if found is None:
            raise ValueError(f"a {entry.kind} entry for {key} comes before the claim itself")
        if entry.kind == FIRST_APPROVAL:
            claims[key] = replace(found, approver_ids=(*found.approver_ids, entry.actor_id))
            continue
        claims[key] = replace(
            found,
            status=entry.kind,  # type: ignore[arg-type]
            statuses=(*found.statuses, entry.kind),  # type: ignore[arg-type]
            validator_id=entry.actor_id if entry.kind == "validated" else found.validator_id,
            approver_ids=(*found.approver_ids, entry.actor_id)
            if entry.kind == "approved"
            else found.approver_ids,
        )
    return claims
