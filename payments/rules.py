"""The payment rules: what an outcome earns under the rate card in force, and whether a
claim may be validated. Pure functions of (outcome, rate card, history).

``decide`` answers every outcome with a ``ClaimDecision``:

- ``claimed``: the outcome meets a metric's rule and fits every cap; it earns the price;
- ``capped``: it would have earned, but one cap would be exceeded (exactly reaching a cap
  is allowed); ``cap`` names the rate-card field; it earns nothing;
- ``not_eligible``: no claim at all, with the reason (no metric, outside the contract,
  already claimed, the re-entry rule, or evidence that does not meet the rule).

Claimed and capped decisions go in the ledger; not-eligible ones do not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from events.outcome import OutcomeEvent
from pathway.measures import Registry, default_registry
from payments.claims import ClaimKey, ClaimRecord
from payments.errors import RateCardError
from payments.evidence import assess
from payments.history import History, Totals
from payments.payers import split
from payments.ratebook import RateCardBook
from payments.ratecard import Metric, RateCard, pounds

Status = Literal["claimed", "capped", "not_eligible"]


@dataclass(frozen=True, slots=True)
class ClaimDecision:
    status: Status
    reason: str  # the evidence that met the rule, the cap exceeded, or why not eligible
    key: ClaimKey | None = None
    amount_pence: int = 0  # what the claim earns: the price when claimed, else 0
    price_pence: int = 0
    cap: str | None = None
    rate_card_version: str | None = None
    partner_id: str = ""
    period: str = ""
    occurred_at: datetime | None = None
    evidence_event_ids: tuple[str, ...] = ()
    measurement_ids: tuple[str, ...] = ()
    claimable_from: date | None = None  # set for metrics claimable only at contract end
    shares: tuple[tuple[str, int], ...] = ()  # each co-funder's part of amount_pence

    @property
    def recorded(self) -> bool:
        """Whether the decision becomes a claim in the ledger."""
        return self.status != "not_eligible"


@dataclass(frozen=True)
class Target:
    """The claim an outcome would make under a rate card, before anything is checked."""

    key: ClaimKey
    metric: Metric
    period: str


def target(card: RateCard, outcome: OutcomeEvent) -> Target | None:
    """The claim key and period an outcome would count under, so the caller can build
    the ``History`` to pass to ``decide``; None when no metric pays for it."""
    found = card.metric_for(outcome.kind())
    if found is None:
        return None
    key = ClaimKey(card.contract_id, outcome.referral_id, outcome.episode, found[0])
    return Target(key, found[1], card.period(outcome.occurred_at))


def decide(
    event_id: str,
    outcome: OutcomeEvent,
    card: RateCard,
    history: History,
    registry: Registry | None = None,
    aim: Target | None = None,
) -> ClaimDecision:
    """What one outcome event earns under the rate card in force at its date (``aim``:
    ``target(card, outcome)`` when the caller has it already)."""
    aim = aim or target(card, outcome)
    if aim is None:
        return ClaimDecision(
            "not_eligible",
            f"rate card {card.contract_id} {card.version} pays no metric for {outcome.TYPE}",
        )
    mid, metric = aim.key.metric, aim.metric

    def decision(status: Status, reason: str, **fields: Any) -> ClaimDecision:
        # Built once, at the end: reconciliation decides millions of outcomes.
        return ClaimDecision(
            status,
            reason,
            key=aim.key,
            price_pence=metric.price_pence,
            rate_card_version=card.version,
            partner_id=outcome.partner_id,
            period=aim.period,
            occurred_at=outcome.occurred_at,
            evidence_event_ids=(event_id, *outcome.evidence_event_ids),
            **fields,
        )

    why_not = _ineligible(card, mid, outcome, history)
    if why_not:
        return decision("not_eligible", why_not)
    evidence = assess(outcome, metric, registry or default_registry())
    ids = evidence.measurement_ids
    if not evidence.met:
        return decision("not_eligible", evidence.detail, measurement_ids=ids)
    cap = first_cap(card, mid, history) or payer_cap(card, mid, history)
    if cap:
        return decision("capped", cap[1], cap=cap[0], measurement_ids=ids)
    return decision(
        "claimed",
        evidence.detail,
        measurement_ids=ids,
        amount_pence=metric.price_pence,
        shares=split(metric.price_pence, card.payers),
        claimable_from=card.end_date if metric.claimable_only_at_end else None,
    )


def decide_in_book(
    book: RateCardBook,
    contract_id: str,
    event_id: str,
    outcome: OutcomeEvent,
    claims: Iterable[ClaimRecord],
    episode_started_at: datetime | None = None,
    registry: Registry | None = None,
) -> ClaimDecision:
    """``decide`` with the rate card found by date and the history summed from the
    contract's claims so far (a small deployment may use this)."""

    def summed(aim: Target) -> History:
        return History.of(claims, aim.key, outcome.partner_id, aim.period, episode_started_at)

    return _in_book(book, contract_id, event_id, outcome, summed, registry)


def decide_with_totals(
    book: RateCardBook,
    contract_id: str,
    event_id: str,
    outcome: OutcomeEvent,
    totals: Totals,
    episode_started_at: datetime | None = None,
    registry: Registry | None = None,
) -> ClaimDecision:
    """``decide_in_book`` with the history from running totals: the same decision, for
    a caller that decides outcome after outcome (reconciliation) and adds each recorded
    claim to ``totals`` as it goes."""

    def running(aim: Target) -> History:
        return totals.history(aim.key, outcome.partner_id, aim.period, episode_started_at)

    return _in_book(book, contract_id, event_id, outcome, running, registry)


def _in_book(
    book: RateCardBook,
    contract_id: str,
    event_id: str,
    outcome: OutcomeEvent,
    history_for: Callable[[Target], History],
    registry: Registry | None,
) -> ClaimDecision:
    try:
        card = book.in_force(contract_id, outcome.occurred_at)
    except RateCardError as exc:
        return ClaimDecision("not_eligible", str(exc))
    aim = target(card, outcome)
    history = history_for(aim) if aim else History()
    return decide(event_id, outcome, card, history, registry, aim)


def first_cap(card: RateCard, metric_id: str, history: History) -> tuple[str, str] | None:
    """The first cap one more ``metric_id`` claim would exceed: (rate-card field, reason)."""
    metric, caps = card.metrics[metric_id], card.caps
    price = metric.price_pence
    in_metric, in_month = history.metric_pence.get(metric_id, 0), history.partner_period_pence
    money = (  # (rate-card field, limit, earned so far, by whom), checked in this order
        ("caps.per_person_pence", caps.per_person_pence, history.person_pence, "this person"),
        (f"metrics.{metric_id}.max_pence", metric.max_pence, in_metric, f"{metric_id} in all"),
        (
            "caps.per_partner_per_month_pence",
            caps.per_partner_per_month_pence,
            in_month,
            "this partner this month",
        ),
        (
            "caps.total_contract_pence",
            caps.total_contract_pence,
            history.contract_pence,
            "the contract",
        ),
    )
    person_count = history.person_counts.get(metric_id, 0)
    if person_count + 1 > metric.max_per_person:
        return (
            f"metrics.{metric_id}.max_per_person",
            f"this person has earned {metric_id} {person_count} times; "
            f"the limit is {metric.max_per_person}",
        )
    count = history.metric_counts.get(metric_id, 0)
    if metric.max_claims is not None and count + 1 > metric.max_claims:
        return (
            f"metrics.{metric_id}.max_claims",
            f"{metric_id} has been earned {count} times; the limit is {metric.max_claims}",
        )
    for field, limit, so_far, whom in money:
        if limit is not None and so_far + price > limit:
            return (
                field,
                f"{whom} has earned £{pounds(so_far)} of £{pounds(limit)}; "
                f"{metric_id} at £{pounds(price)} would exceed it",
            )
    return None


def payer_cap(card: RateCard, metric_id: str, history: History) -> tuple[str, str] | None:
    """The first co-funder whose own cap its share of one more claim would exceed."""
    price = card.metrics[metric_id].price_pence
    for pid, part in split(price, card.payers):
        limit, so_far = card.payers[pid].cap_pence, history.payer_pence.get(pid, 0)
        if limit is not None and so_far + part > limit:
            return (
                f"payers.{pid}.cap_pence",
                f"{pid} has paid £{pounds(so_far)} of £{pounds(limit)}; its share of "
                f"{metric_id}, £{pounds(part)}, would exceed it",
            )
    return None


def _ineligible(card: RateCard, mid: str, outcome: OutcomeEvent, history: History) -> str:
    day = card.local_date(outcome.occurred_at)
    if outcome.partner_id not in card.partners:
        return f"partner {outcome.partner_id} is not paid under contract {card.contract_id}"
    if day < card.start_date:
        return f"the outcome on {day} is before the contract starts ({card.start_date})"
    if day > card.end_date:
        return f"the outcome on {day} is after the contract ended ({card.end_date})"
    if history.already_claimed:
        return f"{mid} is already claimed for this referral's episode {outcome.episode}"
    missing = [r for r in card.metrics[mid].requires if r not in history.episode_metrics]
    if missing:
        return f"requires: {mid} is earned only in an episode that earned {', '.join(missing)}"
    if not history.person_counts.get(mid):
        return ""
    rule = card.re_entry
    if not rule.can_earn_again:
        return f"re_entry: {mid} was earned in an earlier episode and cannot be earned again"
    last = history.person_last_earned.get(mid)
    started = history.episode_started_at or outcome.occurred_at
    if last is not None:
        gap = (card.local_date(started) - card.local_date(last)).days
        if gap < rule.exclusion_days:
            return (
                f"re_entry.exclusion_days: episode {outcome.episode} began {gap} days after "
                f"{mid} was last earned; a new episode can earn it again after "
                f"{rule.exclusion_days} days"
            )
    return ""
