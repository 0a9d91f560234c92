"""What a contract has already paid out, summed as one new outcome's checks need it.

The rules never query anything: the caller (the database layer, or reconciliation)
passes this read-only summary. ``History.of`` builds it from claim records; the
database layer may build the same thing with SQL aggregates instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from payments.claims import ClaimKey, ClaimRecord


def _frozen() -> Mapping[str, int]:
    return MappingProxyType({})


def _no_dates() -> Mapping[str, datetime]:
    return MappingProxyType({})


@dataclass(frozen=True)
class History:
    """Earnings so far, for the person, metric, partner-month and contract of one claim.

    Counts and sums include only earning claims (not capped, not reversed).
    """

    # this very claim (same contract, referral, episode, metric) exists and is not capped;
    # its own amount is left out of every sum, so validation can re-check the caps
    already_claimed: bool = False
    # the same person (referral) across all episodes
    person_pence: int = 0
    person_counts: Mapping[str, int] = field(default_factory=_frozen)
    # per metric, when the person last earned it in an earlier episode
    person_last_earned: Mapping[str, datetime] = field(default_factory=_no_dates)
    # the whole contract
    metric_counts: Mapping[str, int] = field(default_factory=_frozen)
    metric_pence: Mapping[str, int] = field(default_factory=_frozen)
    contract_pence: int = 0
    # this partner in the outcome's month
    partner_period_pence: int = 0
    # when this episode began, if known (a re-entry event); else the outcome date is used
    episode_started_at: datetime | None = None

    @classmethod
    def of(
        cls,
        claims: Iterable[ClaimRecord],
        key: ClaimKey,
        partner_id: str,
        period: str,
        episode_started_at: datetime | None = None,
    ) -> History:
        """Summarise one contract's claims for a new claim ``key``."""
        already = False
        person_pence = contract_pence = partner_pence = 0
        person_counts: dict[str, int] = {}
        last: dict[str, datetime] = {}
        metric_counts: dict[str, int] = {}
        metric_pence: dict[str, int] = {}
        for claim in claims:
            k = claim.key
            if k.contract_id != key.contract_id:
                continue
            if k == key:
                already = already or claim.status != "capped"
                continue
            same_person = k.referral_id == key.referral_id
            earned = claim.earning_pence
            if not earned:
                continue
            contract_pence += earned
            metric_counts[k.metric] = metric_counts.get(k.metric, 0) + 1
            metric_pence[k.metric] = metric_pence.get(k.metric, 0) + earned
            if claim.partner_id == partner_id and claim.period == period:
                partner_pence += earned
            if same_person:
                person_pence += earned
                person_counts[k.metric] = person_counts.get(k.metric, 0) + 1
                if k.episode != key.episode:
                    previous = last.get(k.metric)
                    last[k.metric] = max(previous or claim.occurred_at, claim.occurred_at)
        return cls(
            already_claimed=already,
            person_pence=person_pence,
            person_counts=MappingProxyType(person_counts),
            person_last_earned=MappingProxyType(last),
            metric_counts=MappingProxyType(metric_counts),
            metric_pence=MappingProxyType(metric_pence),
            contract_pence=contract_pence,
            partner_period_pence=partner_pence,
            episode_started_at=episode_started_at,
        )
