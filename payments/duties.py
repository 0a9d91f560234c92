"""Separation of duties: nobody checks or approves their own work.

The validator and every approver differ from the claimant and from whoever produced the
claim's evidence (the link worker who recorded the assessment, the provider who reported
attendance); an approver also differs from the validator. A claim above a threshold
needs two approvers, and they must differ from each other.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from payments.claims import ClaimRecord


@dataclass(frozen=True)
class DutyCheck:
    allowed: bool
    reason: str
    approvals_needed: int = 1
    complete: bool = False  # this approval is the last one needed: the claim is approved


def check_validator(
    claim: ClaimRecord, validator_id: str, evidence_producer_ids: Collection[str]
) -> DutyCheck:
    conflict = _conflict(claim, validator_id, evidence_producer_ids)
    if conflict:
        return DutyCheck(False, f"{validator_id} cannot validate this claim: {conflict}")
    return DutyCheck(True, "", complete=True)


def check_approver(
    claim: ClaimRecord,
    approver_id: str,
    evidence_producer_ids: Collection[str],
    second_approver_needed_above_pence: int | None = None,
) -> DutyCheck:
    """May ``approver_id`` approve ``claim`` now, and does that complete its approval?"""
    threshold = second_approver_needed_above_pence
    needed = 2 if threshold is not None and claim.amount_pence > threshold else 1
    conflict = _conflict(claim, approver_id, evidence_producer_ids)
    if not conflict and approver_id == claim.validator_id:
        conflict = "they validated it"
    if not conflict and approver_id in claim.approver_ids:
        conflict = "they have already approved it; a second approver must be someone else"
    if conflict:
        reason = f"{approver_id} cannot approve this claim: {conflict}"
        return DutyCheck(False, reason, approvals_needed=needed)
    done = len(claim.approver_ids) + 1 >= needed
    return DutyCheck(True, "", approvals_needed=needed, complete=done)


def _conflict(claim: ClaimRecord, actor_id: str, evidence_producer_ids: Collection[str]) -> str:
    if not actor_id:
        return "no identity given"
    if actor_id == claim.claimant_id:
        return "they made the claim"
    if actor_id in evidence_producer_ids:
        return "they produced its evidence"
    return ""
