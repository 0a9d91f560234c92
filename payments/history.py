"""What a contract has already paid out, summed as one new outcome's checks need it.

The rules never query anything: the caller (the database layer, or reconciliation)
passes this read-only summary. ``History.of`` builds it from claim records, one pass
over them all; ``Totals`` keeps the same sums running as claims are added, so a caller
deciding outcome after outcome (reconciliation) pays for each claim once, not once per
later outcome. The database layer may build the same thing with SQL aggregates instead.
"""

from __future__ import annotations

from collections import defaultdict
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


@dataclass
class _Person:
    pence: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    # metric -> episode -> when the person last earned it in that episode
    earned_at: dict[str, dict[int, datetime]] = field(default_factory=dict)


@dataclass
class _Contract:
    pence: int = 0
    metric_counts: dict[str, int] = field(default_factory=dict)
    metric_pence: dict[str, int] = field(default_factory=dict)
    partner_period: dict[tuple[str, str], int] = field(default_factory=dict)
    people: defaultdict[str, _Person] = field(default_factory=lambda: defaultdict(_Person))
    claimed: set[ClaimKey] = field(default_factory=set)  # keys with a claim not capped


class Totals:
    """``History.of`` kept running: ``add`` each claim as it is made, in order, and
    ``history`` answers what ``History.of`` over every claim added so far would.

    One difference, which no decision can see: ``History.of`` leaves the very claim's
    own earlier records out of its sums, these keep them in. Such a record only earns
    when it is not capped, and then ``already_claimed`` holds and the rules stop there.
    """

    def __init__(self) -> None:
        self._contracts: defaultdict[str, _Contract] = defaultdict(_Contract)

    def add(self, claim: ClaimRecord) -> None:
        k = claim.key
        c = self._contracts[k.contract_id]
        if claim.status != "capped":
            c.claimed.add(k)
        earned = claim.earning_pence
        if not earned:
            return
        c.pence += earned
        c.metric_counts[k.metric] = c.metric_counts.get(k.metric, 0) + 1
        c.metric_pence[k.metric] = c.metric_pence.get(k.metric, 0) + earned
        at = (claim.partner_id, claim.period)
        c.partner_period[at] = c.partner_period.get(at, 0) + earned
        person = c.people[k.referral_id]
        person.pence += earned
        person.counts[k.metric] = person.counts.get(k.metric, 0) + 1
        episodes = person.earned_at.setdefault(k.metric, {})
        previous = episodes.get(k.episode)
        episodes[k.episode] = max(previous or claim.occurred_at, claim.occurred_at)

    def history(
        self,
        key: ClaimKey,
        partner_id: str,
        period: str,
        episode_started_at: datetime | None = None,
    ) -> History:
        c = self._contracts[key.contract_id]
        person = c.people.get(key.referral_id) or _Person()
        last = {
            metric: max(at for episode, at in episodes.items() if episode != key.episode)
            for metric, episodes in person.earned_at.items()
            if any(episode != key.episode for episode in episodes)
        }
        # Read-only views of the running sums: a History is used before the next add.
        return History(
            already_claimed=key in c.claimed,
            person_pence=person.pence,
            person_counts=MappingProxyType(person.counts),
            person_last_earned=MappingProxyType(last),
            metric_counts=MappingProxyType(c.metric_counts),
            metric_pence=MappingProxyType(c.metric_pence),
            contract_pence=c.pence,
            partner_period_pence=c.partner_period.get((partner_id, period), 0),
            episode_started_at=episode_started_at,
        )
