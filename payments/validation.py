"""The validation step (claimed -> validated): everything a claim must show before a
contract manager can approve it. Returns every problem at once, so one look at a
failed claim tells the validator all that is wrong."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from events.outcome import OutcomeEvent
from payments.claims import ClaimRecord, allowed_next
from payments.history import History
from payments.ratecard import RateCard
from payments.rules import first_cap, payer_cap


@dataclass(frozen=True)
class Validation:
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_claim(
    claim: ClaimRecord,
    outcome: OutcomeEvent,
    card: RateCard,
    history: History,
    known_event_ids: Collection[str],
    as_of: datetime,
) -> Validation:
    """Check a claim against the outcome that made it, the rate-card version it was
    priced with (``RateCardBook.version``), the caps given the contract's other claims
    (``history`` leaves this claim out) and the event store's ids."""
    key = claim.key
    problems: list[str] = []
    statuses = claim.statuses or (claim.status,)
    if "validated" not in allowed_next(statuses):
        problems.append(f"a {claim.status} claim cannot be validated")
    if (outcome.referral_id, outcome.episode) != (key.referral_id, key.episode):
        problems.append("the outcome is for a different referral or episode than the claim")
    if card.contract_id != key.contract_id or card.version != claim.rate_card_version:
        problems.append(
            f"the claim was priced with rate card {claim.rate_card_version}, "
            f"not {card.contract_id} {card.version}"
        )
    metric = card.metrics.get(key.metric)
    if metric is None:
        problems.append(f"rate card {card.version} has no metric {key.metric}")
    elif claim.amount_pence != metric.price_pence:
        problems.append(
            f"the claim is for {claim.amount_pence}p but {key.metric} is priced at "
            f"{metric.price_pence}p"
        )
    if not claim.evidence_event_ids:
        problems.append("the claim names no evidence events")
    missing = [e for e in claim.evidence_event_ids if e not in known_event_ids]
    if missing:
        problems.append(f"evidence events not in the event store: {', '.join(missing)}")
    if not outcome.consented_to("payment_evidence"):
        # payment evidence, not provider sharing: a person may refuse one and give the other
        problems.append("consent was not recorded for this episode")
    day = card.local_date(outcome.occurred_at)
    if not card.within_contract(day):
        problems.append(
            f"the outcome on {day} is outside the contract ({card.start_date} to {card.end_date})"
        )
    if (
        metric is not None
        and metric.claimable_only_at_end
        and card.local_date(as_of) < (card.end_date)
    ):
        problems.append(f"{key.metric} is claimable only at the contract end ({card.end_date})")
    if metric is not None:
        cap = first_cap(card, key.metric, history) or payer_cap(card, key.metric, history)
        if cap:
            problems.append(f"{cap[0]} would be exceeded: {cap[1]}")
    return Validation(tuple(problems))
