"""The payment rules: metrics, evidence, caps, contract dates, re-entry, validation,
separation of duties and the claim lifecycle. Pure: no servers, no database."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from events.outcome import (
    ConnectionAchieved,
    EngagementAchieved,
    MeasurePair,
    OutcomeEvent,
    SustainedReviewed,
    WellbeingReviewed,
)
from events.referral import MeasureScores
from pathway.measures import default_registry
from payments.claims import (
    ClaimKey,
    ClaimRecord,
    allowed_next,
    claim_id,
    idempotency_key,
    transition,
)
from payments.duties import check_approver, check_validator
from payments.errors import IllegalTransition
from payments.history import History
from payments.ratecard import RateCard, parse_rate_card
from payments.rules import ClaimDecision, decide, decide_in_book
from payments.validation import validate_claim
from tests.unit.test_ratecard import packaged_data

CONTRACT = "demo-county-sp-2026"
PARTNER = "north-wellbeing"
T0 = datetime(2026, 6, 1, 10, tzinfo=UTC)
_ids = itertools.count(1)


# --- factories, shared with test_reconcile ------------------------------------------------


def card(**changes: Any) -> RateCard:
    """The packaged 2026.1 rate card with dotted fields changed: card(**{"caps.x": 1});
    ``...`` removes a field."""
    data = copy.deepcopy(packaged_data())
    for path, value in changes.items():
        *parents, last = path.split(".")
        table = data
        for part in parents:
            table = table.setdefault(part, {})
        if value is ...:
            table.pop(last, None)
        else:
            table[last] = value
    return parse_rate_card(data)


def numbered(count: int, answer: int = 3, **changed: int) -> dict[str, int | float]:
    answers: dict[str, int | float] = {str(n): answer for n in range(1, count + 1)}
    answers.update({key.lstrip("_"): value for key, value in changed.items()})
    return answers


def measure(code: str, answers: Mapping[str, int | float]) -> MeasureScores:
    scores = default_registry().score(code, answers)
    return MeasureScores(
        measurement_id=f"m-{next(_ids)}",
        instrument=scores.instrument,
        version=scores.version,
        raw=scores.raw,
        derived=scores.derived,
        administered_at=T0,
    )


def pair(code: str, before: Mapping[str, int | float], after: Mapping[str, int | float]) -> Any:
    first, later = measure(code, before), measure(code, after)
    return MeasurePair(baseline=first, followup=later, improved=True)


def common(
    referral: str = "r-1",
    episode: int = 1,
    at: datetime = T0,
    partner: str = PARTNER,
    consent: bool = True,
) -> dict[str, Any]:
    return {
        "referral_id": referral,
        "episode": episode,
        "partner_id": partner,
        "locality": "oswestry",
        "occurred_at": at,
        "evidence_event_ids": [f"ev-{referral}-{episode}-{next(_ids)}"],
        "consent_recorded": consent,
    }


def engagement(**kw: Any) -> EngagementAchieved:
    return EngagementAchieved(**common(**kw), baseline=[measure("WEMWBS", numbered(14))])


def connection(sessions: int = 3, **kw: Any) -> ConnectionAchieved:
    return ConnectionAchieved(**common(**kw), attended_sessions=sessions)


def wemwbs_pair(gain: int) -> Any:
    """WEMWBS from 42 to 42 + gain (gain items moved from 3 to 4)."""
    after = numbered(14, **{f"_{n}": 4 for n in range(1, gain + 1)})
    return pair("WEMWBS", numbered(14), after)


def wemwbs_at(gain: int) -> MeasureScores:
    """WEMWBS at 42 + gain (gain items moved from 3 to 4)."""
    return measure("WEMWBS", numbered(14, **{f"_{n}": 4 for n in range(1, gain + 1)}))


def sustained_pair(at_review: int, at_followup: int) -> Any:
    """A follow-up pair as the pathway states it: WEMWBS from a baseline of 42, with the
    review's gain and the follow-up's."""
    followup = wemwbs_pair(at_followup)
    return followup.model_copy(update={"review": wemwbs_at(at_review)})


def reviewed(*pairs: Any, sustained: bool = False, **kw: Any) -> OutcomeEvent:
    cls = SustainedReviewed if sustained else WellbeingReviewed
    return cls(**common(**kw), pairs=list(pairs))


def primary(code: str) -> dict[str, str]:
    """M3 decided by this instrument alone (the demo contract's is WEMWBS)."""
    return {"metrics.M3.primary": code}


def decision(outcome: OutcomeEvent, history: History | None = None, /, **changes: Any) -> Any:
    return decide(f"evt-{next(_ids)}", outcome, card(**changes), history or History())


# --- every metric -------------------------------------------------------------------------


def test_engagement_earns_m1_with_its_evidence_and_rate_card_version() -> None:
    outcome = engagement()
    result = decide("evt-1", outcome, card(), History())
    assert (result.status, result.key, result.amount_pence) == (
        "claimed",
        ClaimKey(CONTRACT, "r-1", 1, "M1"),
        25_000,
    )
    assert result.rate_card_version == "2026.1"
    assert result.evidence_event_ids == ("evt-1", *outcome.evidence_event_ids)
    assert result.measurement_ids == (outcome.baseline[0].measurement_id,)
    assert result.period == "2026-06"


@pytest.mark.parametrize(
    ("sessions", "status"), [(2, "not_eligible"), (3, "claimed"), (7, "claimed")]
)
def test_connection_earns_m2_from_the_minimum_attended_sessions(sessions: int, status: str) -> None:
    result = decision(connection(sessions))
    assert (result.status, result.key.metric) == (status, "M2")
    assert "attended sessions (the rate card needs 3)" in result.reason


@pytest.mark.parametrize(("gain", "status"), [(2, "not_eligible"), (3, "claimed")])
def test_wemwbs_must_rise_by_the_rate_cards_points(gain: int, status: str) -> None:
    result = decision(reviewed(wemwbs_pair(gain)))
    assert (result.status, result.key.metric) == (status, "M3")


def test_a_stricter_rate_card_threshold_is_applied_not_the_instruments() -> None:
    strict = {"metrics.M3.instruments.WEMWBS.min_change": 8}
    assert decision(reviewed(wemwbs_pair(7)), **strict).status == "not_eligible"
    assert decision(reviewed(wemwbs_pair(8)), **strict).status == "claimed"


@pytest.mark.parametrize(
    ("after_total", "status"), [(23, "not_eligible"), (24, "claimed")]
)  # metric 19.25 -> 20.73 is +1.48; -> 21.54 is +2.29
def test_swemwbs_is_judged_on_the_metric_score(after_total: int, status: str) -> None:
    before = numbered(7, 3)  # raw 21
    after = numbered(7, 3, **{f"_{n}": 4 for n in range(1, after_total - 21 + 1)})
    result = decision(reviewed(pair("SWEMWBS", before, after)), **primary("SWEMWBS"))
    assert result.status == status


def ons4(life: int, anxiety: int = 5) -> dict[str, int | float]:
    return {"life_satisfaction": life, "worthwhile": 5, "happiness": 5, "anxiety": anxiety}


@pytest.mark.parametrize(
    ("after", "status"),
    [
        (ons4(6), "not_eligible"),  # 5 -> 6 stays "medium"
        (ons4(7), "claimed"),  # medium -> high
        (ons4(5, anxiety=3), "claimed"),  # anxiety medium -> low is better
    ],
)
def test_ons4_needs_an_item_to_move_a_band(after: dict[str, int | float], status: str) -> None:
    assert decision(reviewed(pair("ONS4", ons4(5), after)), **primary("ONS4")).status == status


@pytest.mark.parametrize(("areas", "status"), [(1, "not_eligible"), (2, "claimed")])
def test_star_needs_k_areas_up_a_step(areas: int, status: str) -> None:
    names = ["lifestyle", "money", "where_you_live", "family_friends", "feeling_positive"]
    names += ["looking_after_yourself", "managing_symptoms", "work_volunteering"]
    before = dict.fromkeys(names, 2)
    after = {**before, **dict.fromkeys(names[:areas], 3)}
    assert decision(reviewed(pair("STAR", before, after)), **primary("STAR")).status == status


def test_under_any_one_instrument_meeting_its_rule_qualifies_and_is_the_evidence() -> None:
    good = wemwbs_pair(4)
    any_one = {"metrics.M3.combine": "any", "metrics.M3.primary": ...}
    result = decision(reviewed(pair("ONS4", ons4(5), ons4(5)), good), **any_one)
    assert result.status == "claimed"
    assert result.measurement_ids == (good.baseline.measurement_id, good.followup.measurement_id)
    assert result.reason == "WEMWBS +4 (meaningful change is +3)"


def test_instruments_not_on_the_rate_card_do_not_count() -> None:
    result = decision(reviewed(pair("UCLA3", numbered(3, 3), numbered(3, 1))))
    assert result.status == "not_eligible"
    assert "UCLA3 is not on the rate card" in result.reason


def test_sustained_improvement_earns_m4() -> None:
    m3_earned = History(episode_metrics=frozenset({"M3"}))
    result = decision(reviewed(sustained_pair(3, 3), sustained=True), m3_earned)
    assert (result.status, result.key.metric, result.amount_pence) == ("claimed", "M4", 40_000)


def test_an_outcome_no_metric_pays_for_is_not_eligible() -> None:
    data = packaged_data()
    del data["metrics"]["M2"]
    result = decide("evt", connection(), parse_rate_card(data), History())
    assert result.status == "not_eligible" and result.key is None
    assert "pays no metric for linkway.outcome.connection.v1" in result.reason


def test_a_partner_outside_the_contract_earns_nothing() -> None:
    result = decision(engagement(partner="elsewhere"))
    assert result.status == "not_eligible"
    assert "partner elsewhere is not paid under contract" in result.reason


def test_the_same_metric_cannot_be_claimed_twice_in_an_episode() -> None:
    result = decision(engagement(), History(already_claimed=True))
    assert result.status == "not_eligible" and "already claimed" in result.reason


# --- contract dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        (datetime(2026, 3, 31, 22, 59, tzinfo=UTC), "not_eligible"),  # 23:59 BST, 31 March
        (datetime(2026, 3, 31, 23, 0, tzinfo=UTC), "claimed"),  # 00:00 BST, 1 April
        (datetime(2029, 3, 31, 22, 59, tzinfo=UTC), "claimed"),  # the end date is inside
        (datetime(2029, 3, 31, 23, 0, tzinfo=UTC), "not_eligible"),  # the day after
    ],
)
def test_outcomes_count_from_the_start_date_to_the_end_date_inclusive(
    moment: datetime, status: str
) -> None:
    assert decision(engagement(at=moment), **{"effective_from": date(2026, 4, 1)}).status == status


# --- caps: exactly at a cap is allowed; one penny over is capped -------------------------

M3_PRICE = 50_000
LIMIT = 1_000_000


@pytest.mark.parametrize(
    ("cap", "so_far"),
    [
        ("caps.per_person_pence", lambda p: History(person_pence=p)),
        ("caps.per_partner_per_month_pence", lambda p: History(partner_period_pence=p)),
        ("caps.total_contract_pence", lambda p: History(contract_pence=p)),
        ("metrics.M3.max_pence", lambda p: History(metric_pence={"M3": p})),
    ],
)
def test_a_money_cap_allows_reaching_it_exactly_and_caps_one_penny_over(
    cap: str, so_far: Callable[[int], History]
) -> None:
    outcome = reviewed(wemwbs_pair(3))
    exactly = decision(outcome, so_far(LIMIT - M3_PRICE), **{cap: LIMIT})
    assert (exactly.status, exactly.amount_pence, exactly.cap) == ("claimed", M3_PRICE, None)
    over = decision(outcome, so_far(LIMIT - M3_PRICE + 1), **{cap: LIMIT})
    assert (over.status, over.cap, over.amount_pence, over.price_pence) == (
        "capped",
        cap,
        0,
        M3_PRICE,
    )
    assert over.reason.endswith("M3 at £500.00 would exceed it")


@pytest.mark.parametrize(
    ("cap", "so_far"),
    [
        ("metrics.M3.max_per_person", lambda n: History(person_counts={"M3": n})),
        ("metrics.M3.max_claims", lambda n: History(metric_counts={"M3": n})),
    ],
)
def test_a_count_cap_allows_the_last_claim_and_caps_the_next(
    cap: str, so_far: Callable[[int], History]
) -> None:
    changes = {cap: 3, "re_entry.exclusion_days": 0}
    outcome = reviewed(wemwbs_pair(3), episode=3)
    assert decision(outcome, so_far(2), **changes).status == "claimed"
    over = decision(outcome, so_far(3), **changes)
    assert (over.status, over.cap) == ("capped", cap)


def test_a_claimable_only_at_end_metric_says_from_when() -> None:
    result = decision(engagement(), **{"metrics.M1.claimable_only_at_end": True})
    assert (result.status, result.claimable_from) == ("claimed", date(2029, 3, 31))
    assert decision(engagement()).claimable_from is None


# --- re-entry -----------------------------------------------------------------------------

EARNED_BEFORE = datetime(2026, 5, 1, 12, tzinfo=UTC)


def earlier_episode(started: datetime | None = None) -> History:
    return History(
        person_pence=25_000,
        person_counts={"M1": 1},
        person_last_earned={"M1": EARNED_BEFORE},
        episode_started_at=started,
    )


def test_re_entry_can_be_refused_outright() -> None:
    result = decision(
        engagement(episode=2, at=T0 + timedelta(days=400)),
        earlier_episode(),
        **{"re_entry.can_earn_again": False},
    )
    assert result.status == "not_eligible"
    assert result.reason.startswith("re_entry: M1 was earned in an earlier episode")


@pytest.mark.parametrize(("days", "status"), [(179, "not_eligible"), (180, "claimed")])
def test_a_new_episode_inside_the_exclusion_window_cannot_earn_again(
    days: int, status: str
) -> None:
    started = EARNED_BEFORE + timedelta(days=days)
    result = decision(
        engagement(episode=2, at=started + timedelta(days=30)), earlier_episode(started)
    )
    assert result.status == status
    if status == "not_eligible":
        assert result.reason.startswith("re_entry.exclusion_days: episode 2 began 179 days")


def test_without_a_known_start_the_window_runs_to_the_outcome_date() -> None:
    inside = engagement(episode=2, at=EARNED_BEFORE + timedelta(days=100))
    outside = engagement(episode=2, at=EARNED_BEFORE + timedelta(days=200))
    assert decision(inside, earlier_episode()).status == "not_eligible"
    assert decision(outside, earlier_episode()).status == "claimed"


def test_history_sums_claims_for_one_new_claim() -> None:
    key = ClaimKey(CONTRACT, "r-1", 2, "M1")
    claims = [
        record(ClaimKey(CONTRACT, "r-1", 1, "M1"), at=EARNED_BEFORE),
        record(ClaimKey(CONTRACT, "r-1", 1, "M3"), amount=50_000, status="reversed"),
        record(ClaimKey(CONTRACT, "r-2", 1, "M1")),
        record(ClaimKey(CONTRACT, "r-4", 1, "M1"), partner="south-wellbeing"),
        record(ClaimKey(CONTRACT, "r-3", 1, "M1"), status="capped", amount=0),
        record(ClaimKey("other", "r-1", 1, "M1")),
    ]
    history = History.of(claims, key, PARTNER, "2026-06")
    assert (history.person_pence, dict(history.person_counts)) == (25_000, {"M1": 1})
    assert dict(history.person_last_earned) == {"M1": EARNED_BEFORE}
    assert (history.contract_pence, dict(history.metric_counts)) == (75_000, {"M1": 3})
    assert history.partner_period_pence == 25_000
    assert not history.already_claimed
    assert History.of([*claims, record(key)], key, PARTNER, "2026-06").already_claimed
    capped_self = record(key, status="capped", amount=0)
    assert not History.of([capped_self], key, PARTNER, "2026-06").already_claimed


# --- validation ---------------------------------------------------------------------------


def record(
    key: ClaimKey,
    amount: int = 25_000,
    status: str = "claimed",
    at: datetime = T0,
    partner: str = PARTNER,
    **kw: Any,
) -> ClaimRecord:
    return ClaimRecord(
        key=key,
        partner_id=partner,
        period=at.strftime("%Y-%m"),
        occurred_at=at,
        status=status,  # type: ignore[arg-type]
        amount_pence=amount,
        rate_card_version="2026.1",
        **kw,
    )


def claimed(outcome: OutcomeEvent, **changes: Any) -> tuple[ClaimRecord, ClaimDecision]:
    made = decide("evt-v", outcome, card(**changes), History())
    assert made.key is not None
    claim = record(
        made.key,
        amount=made.amount_pence,
        evidence_event_ids=made.evidence_event_ids,
        statuses=("claimed",),
        claimant_id="payments-engine",
    )
    return claim, made


def test_a_sound_claim_validates() -> None:
    outcome = engagement()
    claim, made = claimed(outcome)
    result = validate_claim(claim, outcome, card(), History(), set(made.evidence_event_ids), T0)
    assert result.ok, result.problems


def test_validation_lists_every_problem() -> None:
    outcome = engagement(consent=False)
    claim, made = claimed(outcome)
    claim = dataclasses.replace(claim, amount_pence=24_999)
    tight = card(**{"caps.total_contract_pence": 25_000})
    result = validate_claim(claim, outcome, tight, History(contract_pence=1), {"evt-v"}, T0)
    assert not result.ok
    problems = "\n".join(result.problems)
    assert "the claim is for 24999p but M1 is priced at 25000p" in problems
    assert f"evidence events not in the event store: {made.evidence_event_ids[1]}" in problems
    assert "consent was not recorded" in problems
    assert "caps.total_contract_pence would be exceeded" in problems


def test_validation_checks_contract_dates_and_end_only_metrics() -> None:
    late = engagement(at=datetime(2029, 4, 2, tzinfo=UTC))
    claim, made = claimed(engagement())
    known = set(made.evidence_event_ids) | set(late.evidence_event_ids)
    claim = dataclasses.replace(claim, evidence_event_ids=tuple(late.evidence_event_ids))
    result = validate_claim(claim, late, card(), History(), known, T0)
    assert any("is outside the contract" in p for p in result.problems)
    end_only = card(**{"metrics.M1.claimable_only_at_end": True})
    outcome = engagement()
    claim, made = claimed(outcome, **{"metrics.M1.claimable_only_at_end": True})
    known = set(made.evidence_event_ids)
    early = validate_claim(claim, outcome, end_only, History(), known, T0)
    assert early.problems == ("M1 is claimable only at the contract end (2029-03-31)",)
    at_end = datetime(2029, 3, 31, 12, tzinfo=UTC)
    assert validate_claim(claim, outcome, end_only, History(), known, at_end).ok


def test_a_claim_is_validated_against_the_version_it_was_priced_with() -> None:
    outcome = engagement()
    claim, made = claimed(outcome)
    newer = card(version="2027.1")
    result = validate_claim(claim, outcome, newer, History(), set(made.evidence_event_ids), T0)
    assert "priced with rate card 2026.1, not demo-county-sp-2026 2027.1" in result.problems[0]


def test_decide_in_book_reports_when_no_version_is_in_force() -> None:
    from payments.ratebook import RateCardBook

    early = engagement(at=datetime(2025, 1, 1, tzinfo=UTC))
    result = decide_in_book(RateCardBook([card()]), CONTRACT, "e", early, [])
    assert result.status == "not_eligible" and "first takes effect" in result.reason


# --- separation of duties -----------------------------------------------------------------


def test_the_validator_is_not_the_claimant_or_an_evidence_producer() -> None:
    claim = record(ClaimKey(CONTRACT, "r-1", 1, "M1"), claimant_id="engine")
    assert check_validator(claim, "cm-ann", {"lw-bob"}).allowed
    assert check_validator(claim, "engine", {"lw-bob"}).reason.endswith("they made the claim")
    assert "produced its evidence" in check_validator(claim, "lw-bob", {"lw-bob"}).reason


def test_approvers_differ_from_claimant_validator_and_each_other() -> None:
    claim = record(
        ClaimKey(CONTRACT, "r-1", 1, "M3"),
        amount=50_000,
        claimant_id="engine",
        validator_id="cm-ann",
        status="validated",
        statuses=("claimed", "validated"),
    )
    assert not check_approver(claim, "cm-ann", set()).allowed
    assert not check_approver(claim, "engine", set()).allowed
    assert not check_approver(claim, "lw-bob", {"lw-bob"}).allowed
    single = check_approver(claim, "cm-cat", set(), second_approver_needed_above_pence=50_000)
    assert (single.allowed, single.approvals_needed, single.complete) == (True, 1, True)
    first = check_approver(claim, "cm-cat", set(), second_approver_needed_above_pence=49_999)
    assert (first.allowed, first.approvals_needed, first.complete) == (True, 2, False)
    once = dataclasses.replace(claim, approver_ids=("cm-cat",))
    again = check_approver(once, "cm-cat", set(), 49_999)
    assert not again.allowed and "already approved" in again.reason
    second = check_approver(once, "cm-dan", set(), 49_999)
    assert (second.allowed, second.complete) == (True, True)


# --- claim identity and lifecycle ---------------------------------------------------------


def test_the_idempotency_key_and_claim_id_are_stable_per_claim() -> None:
    key = ClaimKey(CONTRACT, "r-1", 2, "M3")
    assert idempotency_key(key) == "demo-county-sp-2026/r-1/2/M3"
    assert claim_id(key) == claim_id(ClaimKey(CONTRACT, "r-1", 2, "M3"))
    assert claim_id(key) != claim_id(key._replace(episode=1))


@pytest.mark.parametrize(
    "path",
    [
        ["claimed", "validated", "approved", "paid"],
        ["claimed", "disputed", "reversed"],
        ["claimed", "validated", "disputed", "upheld", "approved", "paid"],
        ["claimed", "validated", "approved", "paid", "disputed", "upheld", "disputed", "reversed"],
        ["capped"],
    ],
)
def test_legal_lifecycles(path: list[str]) -> None:
    for i, status in enumerate(path):
        assert transition(path[:i], status) == status


@pytest.mark.parametrize(
    ("history", "to", "message"),
    [
        ([], "validated", "a new claim must start as claimed or capped, not validated"),
        (["claimed"], "approved", "from claimed to approved; from claimed it can go to: validated"),
        (
            ["claimed", "validated", "approved", "paid"],
            "approved",
            "from paid it can go to: disputed",
        ),
        (
            ["claimed", "disputed", "reversed"],
            "claimed",
            "from reversed it can go to: nothing (it is final)",
        ),
        (
            ["claimed", "disputed", "upheld"],
            "approved",
            "from upheld it can go to: validated, disputed",
        ),
        (["capped"], "claimed", "a capped claim is final unless it is re-evaluated"),
        (["claimed"], "settled", "'settled' is not a claim status"),
    ],
)
def test_illegal_transitions_are_refused_with_what_is_allowed(
    history: list[str], to: str, message: str
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition(history, to)
    assert message in str(caught.value)


def test_a_capped_claim_can_be_claimed_on_re_evaluation() -> None:
    assert transition(["capped"], "claimed", reevaluation=True) == "claimed"
    assert allowed_next(["capped"]) == ()
