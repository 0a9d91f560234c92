"""What a contract has already paid out, summed as one new outcome's checks need it.

The rules never query anything: the caller (the database layer, or reconciliation)
passes this read-only summary. ``History.of`` builds it from claim records, one pass
over them all; ``Totals`` keeps the same sums running as claims are added, so a caller
deciding outcome after outcome (reconciliation) pays for each claim once, not once per
later outcome, and holds sums, not claims (one small fact per claim key per person), as
reconciliation keeps them for every person in a contract year. The database layer may
build the same thing with SQL aggregates instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

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
    # metrics this referral episode has met (claimed or capped, not reversed), for a
    # metric that ``requires`` others
    episode_metrics: frozenset[str] = frozenset()
    # each co-funder's shares of the contract's earning claims, for its own cap
    payer_pence: Mapping[str, int] = field(default_factory=_frozen)

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
        met: set[str] = set()
        payers: dict[str, int] = {}
        for claim in claims:
            k = claim.key
            if k.contract_id != key.contract_id:
                continue
            same_episode = (k.referral_id, k.episode) == (key.referral_id, key.episode)
            if same_episode and claim.status != "reversed":
                met.add(k.metric)
            if k == key:
                already = already or claim.status != "capped"
                continue
            same_person = k.referral_id == key.referral_id
            earned = claim.earning_pence
            if not earned:
                continue
            contract_pence += earned
            for pid, part in claim.earning_shares:
                payers[pid] = payers.get(pid, 0) + part
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
            episode_metrics=frozenset(met),
            payer_pence=MappingProxyType(payers),
        )


class _Fact(NamedTuple):
    """What a person's running totals keep of one claim key (the metric in one episode)."""

    metric: str
    episode: int
    met: bool  # claimed or capped, and not reversed: for a metric that ``requires`` it
    claimed: bool  # not capped; still true after a reversal
    earning: int  # earning claims of this key (one, unless a caller adds it twice)
    earned_at: datetime | None  # when it last earned; None once reversed


class _Person:
    """One person's earnings under one contract: slotted, and a tuple of one ``_Fact``
    per claim key, as reconciliation holds one per referral, by the million (a dict per
    sum would cost several times as much)."""

    __slots__ = ("facts", "pence")

    def __init__(self) -> None:
        self.pence = 0
        self.facts: tuple[_Fact, ...] = ()

    def fact(self, metric: str, episode: int) -> _Fact:
        for f in self.facts:
            if f.metric == metric and f.episode == episode:
                return f
        return _Fact(metric, episode, False, False, 0, None)

    def put(self, new: _Fact) -> None:
        kept = tuple(f for f in self.facts if (f.metric, f.episode) != (new.metric, new.episode))
        self.facts = (*kept, new)


@dataclass
class _Contract:
    pence: int = 0
    metric_counts: dict[str, int] = field(default_factory=dict)
    metric_pence: dict[str, int] = field(default_factory=dict)
    partner_period: dict[tuple[str, str], int] = field(default_factory=dict)
    payers: dict[str, int] = field(default_factory=dict)
    people: defaultdict[str, _Person] = field(default_factory=lambda: defaultdict(_Person))


class Totals:
    """``History.of`` kept running: ``add`` each claim as it is made, in order, and
    ``history`` answers what ``History.of`` over every claim added so far would.

    One difference, which no decision can see: ``History.of`` leaves the very claim's
    own earlier records out of its sums, these keep them in. Such a record only earns
    when it is not capped, and then ``already_claimed`` holds and the rules stop there.

    It keeps sums per contract and, per person, one small ``_Fact`` per claim key.
    """

    def __init__(self) -> None:
        self._contracts: defaultdict[str, _Contract] = defaultdict(_Contract)

    def add(self, claim: ClaimRecord) -> None:
        k = claim.key
        c = self._contracts[k.contract_id]
        person = c.people[k.referral_id]
        fact = person.fact(k.metric, k.episode)
        fact = fact._replace(met=True, claimed=fact.claimed or claim.status != "capped")
        earned = claim.earning_pence
        if earned:
            at = max(fact.earned_at or claim.occurred_at, claim.occurred_at)
            fact = fact._replace(earning=fact.earning + 1, earned_at=at)
        person.put(fact)
        if not earned:
            return
        c.pence += earned
        for pid, part in claim.earning_shares:
            c.payers[pid] = c.payers.get(pid, 0) + part
        c.metric_counts[k.metric] = c.metric_counts.get(k.metric, 0) + 1
        c.metric_pence[k.metric] = c.metric_pence.get(k.metric, 0) + earned
        month = (claim.partner_id, claim.period)
        c.partner_period[month] = c.partner_period.get(month, 0) + earned
        person.pence += earned

    def reverse(self, claim: ClaimRecord) -> None:
        """Take back a claim that ``add`` counted, as a reversal in the ledger does: it
        earns nothing from now on and frees the room it took under every cap, as
        ``History.of`` over the ledger then sees it. The claim stays claimed (a
        redelivered outcome does not earn it again)."""
        k = claim.key
        c = self._contracts[k.contract_id]
        person = c.people[k.referral_id]
        fact = person.fact(k.metric, k.episode)._replace(met=False)
        earned = claim.earning_pence
        if earned:
            # History.of keeps the latest earning claim per metric; an episode has at
            # most one claim per metric, so forgetting this one's date is exact.
            fact = fact._replace(earning=fact.earning - 1, earned_at=None)
        person.put(fact)
        if not earned:
            return
        c.pence -= earned
        for pid, part in claim.earning_shares:
            c.payers[pid] -= part
        c.metric_counts[k.metric] -= 1
        c.metric_pence[k.metric] -= earned
        c.partner_period[(claim.partner_id, claim.period)] -= earned
        person.pence -= earned

    def history(
        self,
        key: ClaimKey,
        partner_id: str,
        period: str,
        episode_started_at: datetime | None = None,
    ) -> History:
        c = self._contracts[key.contract_id]
        person = c.people.get(key.referral_id) or _Person()
        counts: dict[str, int] = {}
        last: dict[str, datetime] = {}
        met: set[str] = set()
        for f in person.facts:
            if f.earning:
                counts[f.metric] = counts.get(f.metric, 0) + f.earning
            at = f.earned_at
            if at is not None and f.episode != key.episode:
                last[f.metric] = max(last.get(f.metric) or at, at)
            if f.met and f.episode == key.episode:
                met.add(f.metric)
        # Read-only views of the running sums: a History is used before the next add.
        return History(
            already_claimed=person.fact(key.metric, key.episode).claimed,
            person_pence=person.pence,
            person_counts=MappingProxyType(counts),
            person_last_earned=MappingProxyType(last),
            metric_counts=MappingProxyType(c.metric_counts),
            metric_pence=MappingProxyType(c.metric_pence),
            contract_pence=c.pence,
            partner_period_pence=c.partner_period.get((partner_id, period), 0),
            episode_started_at=episode_started_at,
            episode_metrics=frozenset(met),
            payer_pence=MappingProxyType(c.payers),
        )
