"""The rules as an outcomes contract writes them (issue 11): sustained means the review's
improvement is still there, "improved" follows the instruments and combination the
contract names, consent purposes are separate, thresholds stay within what the
literature supports, and reconciliation stays exact after reversals. Each test here
failed on the code before the fix. Pure: no servers, no database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from events.outcome import OutcomeEvent
from pathway import commands as cmd
from payments.claims import ClaimKey
from payments.entries import claim_entry, current_claims, transition_entry
from payments.errors import RateCardError
from payments.history import History
from payments.ledger import EntryBody
from payments.ratebook import RateCardBook
from payments.reconcile import expected_claims, reconcile, reversals_after
from payments.rules import decide_in_book
from payments.validation import validate_claim
from tests.unit.pathway_fixtures import at_stage, only, wemwbs
from tests.unit.test_payment_rules import (
    CONTRACT,
    T0,
    card,
    claimed,
    common,
    decision,
    engagement,
    measure,
    numbered,
    ons4,
    pair,
    reviewed,
    sustained_pair,
    wemwbs_pair,
)
from tests.unit.test_ratecard import with_change

M3_MET = History(episode_metrics=frozenset({"M3"}))


# --- defect 1: sustained means the review's improvement is still there ---------------------


def test_improved_at_six_months_but_not_at_three_earns_no_m4() -> None:
    late_bloomer = reviewed(sustained_pair(at_review=0, at_followup=4), sustained=True)
    result = decision(late_bloomer, M3_MET)
    assert result.status == "not_eligible"
    assert result.reason.startswith("no instrument met its rule: review: WEMWBS +0")


def test_improvement_kept_from_the_review_to_the_follow_up_earns_m4() -> None:
    kept = reviewed(sustained_pair(at_review=3, at_followup=4), sustained=True)
    result = decision(kept, M3_MET)
    assert (result.status, result.key.metric) == ("claimed", "M4")
    assert len(result.measurement_ids) == 3  # baseline, follow-up and the review


def test_m4_requires_m3_earned_in_the_same_episode() -> None:
    kept = reviewed(sustained_pair(at_review=3, at_followup=4), sustained=True)
    result = decision(kept, History())
    assert result.status == "not_eligible"
    assert result.reason == "requires: M4 is earned only in an episode that earned M3"


def test_a_follow_up_without_a_review_measure_sustains_nothing() -> None:
    assert decision(reviewed(wemwbs_pair(5), sustained=True), M3_MET).status == "not_eligible"


def test_the_pathway_puts_the_review_measure_in_the_follow_up_pair() -> None:
    from events import outcome as oc
    from tests.unit.pathway_fixtures import WEMWBS_HIGH, WEMWBS_SAME

    case = at_stage("supported")
    case.at(case.state.episode.deadlines["review"])
    case.do(cmd.RecordReview, decision="dormant", measures=[wemwbs(WEMWBS_SAME)])
    case.at(case.state.episode.deadlines["followup"])
    [follow] = only(
        case.do(cmd.RecordFollowup, measures=[wemwbs(WEMWBS_HIGH)]), oc.SustainedReviewed
    ).pairs
    reviewed_at = case.state.episode.review_measures["WEMWBS"]
    assert follow.review is not None and follow.review.raw == reviewed_at.raw


def test_a_metric_cannot_require_itself_or_a_metric_not_on_the_card() -> None:
    for required in (["M4"], ["M9"]):
        with pytest.raises(RateCardError, match=r"^metrics\.M4\.requires: "):
            card(**{"metrics.M4.requires": required})
    with pytest.raises(RateCardError, match="must not lead back"):
        card(**{"metrics.M3.requires": ["M4"]})


# --- defect 2: "improved" as the contract names it --------------------------------------


ANY: dict[str, Any] = {"metrics.M3.combine": "any", "metrics.M3.primary": ...}


def up_one_down_one() -> Any:
    """ONS4 life satisfaction up a band, anxiety up a band (worse)."""
    return pair("ONS4", ons4(5, anxiety=5), ons4(7, anxiety=6))


def test_ons4_with_one_item_up_and_one_down_is_not_improved() -> None:
    result = decision(reviewed(up_one_down_one()), **ANY)
    assert result.status == "not_eligible"
    assert "1 worse (none may be)" in result.reason


def test_a_contract_may_allow_items_to_worsen_if_it_says_so() -> None:
    lenient = {**ANY, "metrics.M3.instruments.ONS4.no_item_worse": False}
    assert decision(reviewed(up_one_down_one()), **lenient).status == "claimed"


def test_under_the_demo_contract_only_wemwbs_decides_m3() -> None:
    """More instruments recorded must not mean more chances to be paid."""
    good_ons4 = pair("ONS4", ons4(5), ons4(7))
    assert decision(reviewed(good_ons4, wemwbs_pair(1))).status == "not_eligible"
    assert decision(reviewed(good_ons4, wemwbs_pair(3))).status == "claimed"


def test_all_needs_every_named_instrument_to_meet_its_rule() -> None:
    two = {
        "metrics.M3.combine": "all",
        "metrics.M3.primary": ...,
        "metrics.M3.instruments": _only("WEMWBS", "ONS4"),
    }
    assert decision(reviewed(pair("ONS4", ons4(5), ons4(7)), wemwbs_pair(3)), **two).status == (
        "claimed"
    )
    result = decision(reviewed(wemwbs_pair(3)), **two)
    assert result.status == "not_eligible"
    assert "ONS4 was not measured at both points" in result.reason


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("metrics.M3.combine", ..., 'metrics.M3.combine: must be "any", "all" or "primary"'),
        ("metrics.M3.primary", "PAM13", "metrics.M3.primary: must be one of the metric's"),
        ("metrics.M3.primary", ..., "metrics.M3.primary: is required for, and only for"),
        ("metrics.M3.instruments.WEMWBS.no_item_worse", True, "WEMWBS has one score"),
    ],
)
def test_how_instruments_combine_is_stated_and_checked(
    field: str, value: Any, message: str
) -> None:
    data = with_change(field, value)
    if field == "metrics.M3.combine":
        del data["metrics"]["M3"]["primary"]
    with pytest.raises(RateCardError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _parse(data)


# --- defect 3: consent purposes are separate -----------------------------------------------


def outcome_with(consent: bool, purposes: list[str] | None) -> OutcomeEvent:
    from events.outcome import EngagementAchieved

    return EngagementAchieved(
        **{**common(consent=consent), "consent_purposes": purposes},
        baseline=[measure("WEMWBS", numbered(14))],
    )


def test_declined_provider_sharing_but_consented_to_payment_evidence_earns_a_claim() -> None:
    outcome = outcome_with(False, ["payment_evidence", "evaluation"])
    claim, made = claimed(outcome)
    result = validate_claim(claim, outcome, card(), History(), set(made.evidence_event_ids), T0)
    assert result.ok, result.problems


def test_provider_sharing_alone_is_not_consent_to_payment_evidence() -> None:
    outcome = outcome_with(True, ["provider_sharing", "evaluation"])
    claim, made = claimed(outcome)
    result = validate_claim(claim, outcome, card(), History(), set(made.evidence_event_ids), T0)
    assert result.problems == ("consent was not recorded for this episode",)


def test_the_pathway_states_each_consent_purpose_on_the_outcome() -> None:
    from events import outcome as oc

    case = at_stage("assessment", consent=False)
    consent = cmd.ConsentPurposes(payment_evidence=True, evaluation=False)
    case.do(cmd.RecordAssessment, support_level="2", measures=[wemwbs()], consent=consent)
    engaged = only(case.do(cmd.AgreePlan, goal_count=1), oc.EngagementAchieved)
    assert (engaged.consent_recorded, engaged.consent_purposes) == (False, ["payment_evidence"])


def test_an_assessment_that_did_not_ask_keeps_the_v1_consent_meaning() -> None:
    from events import outcome as oc

    case = at_stage("planning")
    engaged = only(case.do(cmd.AgreePlan, goal_count=1), oc.EngagementAchieved)
    assert (engaged.consent_recorded, engaged.consent_purposes) == (True, None)


# --- defect 4: thresholds within what the literature supports -------------------------------


@pytest.mark.parametrize(
    ("instrument", "value", "message"),
    [
        ("WEMWBS", 0.5, "metrics.M3.instruments.WEMWBS.min_change: must be from 3 to 8 for WEMWBS"),
        ("WEMWBS", 9, "metrics.M3.instruments.WEMWBS.min_change: must be from 3 to 8 for WEMWBS"),
        ("ONS4", 3, "metrics.M3.instruments.ONS4.min_change: must be from 1 to 2 for ONS4"),
        ("STAR", 3, "metrics.M3.instruments.STAR.min_change: must be from 1 to 2 for STAR"),
    ],
)
def test_a_threshold_outside_the_instruments_range_is_refused_naming_the_field(
    instrument: str, value: float, message: str
) -> None:
    with pytest.raises(RateCardError) as refused:
        card(**{f"metrics.M3.instruments.{instrument}.min_change": value})
    assert str(refused.value) == message


def test_the_strict_wemwbs_threshold_is_within_range() -> None:
    assert card(**{"metrics.M3.instruments.WEMWBS.min_change": 8}).metrics["M3"]


# --- defect 6: reconciliation is exact after reversals -----------------------------------


def test_a_reversal_that_frees_cap_room_is_not_reported_as_should_be_capped() -> None:
    """Two engagements fill the monthly partner cap, so the third is capped; the first is
    reversed, and the fourth, later, fits in the room it freed. The ledger is honest."""
    rates = RateCardBook([card(**{"caps.per_partner_per_month_pence": 50_000})])
    outcomes = [
        (f"evt-{n}", engagement(referral=f"r-{n}", at=T0 + timedelta(hours=n))) for n in range(4)
    ]
    bodies: list[EntryBody] = []
    for event_id, outcome in outcomes:
        made = decide_in_book(rates, CONTRACT, event_id, outcome, current_claims(bodies).values())
        bodies.append(claim_entry(made, "payments-engine", outcome.occurred_at))
        if event_id == "evt-2":  # a contract manager reverses r-0 after the third outcome
            first = current_claims(bodies)[ClaimKey(CONTRACT, "r-0", 1, "M1")]
            for to in ("disputed", "reversed"):
                first = current_claims(bodies)[first.key]
                bodies.append(transition_entry(first, to, f"cm-{to}", T0 + timedelta(days=1)))
    ledger = current_claims(bodies)
    assert [ledger[ClaimKey(CONTRACT, f"r-{n}", 1, "M1")].status for n in range(4)] == [
        "reversed",
        "claimed",
        "capped",
        "claimed",
    ]
    assert reconcile(outcomes, rates, ledger, reversals=reversals_after(bodies)) == []
    expected = expected_claims(outcomes, rates, reversals=reversals_after(bodies))
    assert expected[ClaimKey(CONTRACT, "r-3", 1, "M1")].status == "claimed"


# --- helpers -----------------------------------------------------------------------------


def _only(*codes: str) -> dict[str, Any]:
    from tests.unit.test_ratecard import packaged_data

    rules = packaged_data()["metrics"]["M3"]["instruments"]
    return {code: rules[code] for code in codes}


def _parse(data: dict[str, Any]) -> Any:
    from payments.ratecard import parse_rate_card

    return parse_rate_card(data)
