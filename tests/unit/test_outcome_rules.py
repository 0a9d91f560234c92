"""Outcome facts for the payment engine: what each needs, and at most once per episode."""

from __future__ import annotations

import pytest

from events import outcome as oc
from events import referral as ev
from events.catalogue import EventData
from pathway import commands as cmd
from pathway.rules import Rejected
from tests.unit.pathway_fixtures import (
    ONS4_BETTER,
    ONS4_LOW,
    ONS4_SAME,
    WEMWBS_HIGH,
    WEMWBS_SAME,
    Case,
    at_stage,
    measure,
    only,
    types,
    wemwbs,
)

OUTCOMES = (
    oc.EngagementAchieved,
    oc.ConnectionAchieved,
    oc.WellbeingReviewed,
    oc.SustainedReviewed,
)


def outcomes_in(events: list[tuple[str, EventData]]) -> list[type]:
    return [type(e) for _, e in events if isinstance(e, OUTCOMES)]


def two_measures() -> Case:
    """Planning, with a WEMWBS and an ONS4 baseline."""
    return at_stage("planning", baseline=[wemwbs(), measure("ONS4", ONS4_LOW)])


def review_at_due(case: Case, **fields: object) -> cmd.Command:
    case.at(case.state.episode.deadlines["review"])
    return case.command(cmd.RecordReview, **fields)


# --- engagement ----------------------------------------------------------------------------


def test_engagement_is_stated_when_a_plan_follows_an_assessment_with_a_baseline() -> None:
    case = at_stage("planning")
    assessment_id = case.state.episode.evidence["assessment"][0]

    decision = case.do(cmd.AgreePlan, goal_count=2)

    plan_id = decision.events[0][0]
    engaged = only(decision, oc.EngagementAchieved)
    assert (engaged.referral_id, engaged.episode, engaged.partner_id) == (
        "ref-1",
        1,
        "north-wellbeing",
    )
    assert engaged.evidence_event_ids == [assessment_id, plan_id]
    assert [(b.instrument, b.raw) for b in engaged.baseline] == [("WEMWBS", {"total": 28})]
    assert engaged.consent_recorded is True
    assert engaged.occurred_at == case.now
    assert case.state.episode.outcomes == ["engagement"]


def test_an_assessment_alone_is_not_engagement() -> None:
    case = at_stage("assessment")

    decision = case.do(cmd.RecordAssessment, support_level="2", measures=[wemwbs()])

    assert outcomes_in(decision.events) == []


def test_engagement_is_stated_once_per_episode() -> None:
    case = at_stage("supported")

    decision = case.do(cmd.AgreePlan, goal_count=5)

    assert outcomes_in(decision.events) == []
    assert outcomes_in(case.events) == [oc.EngagementAchieved]


def test_a_new_episode_can_be_engaged_again() -> None:
    case = at_stage("review")
    case.do(cmd.RecordReview, decision="dormant")
    case.later(days=400).do(cmd.ReEnter, source="self", referrer_org_id="self")
    case.do(cmd.AcceptReferral)
    case.do(cmd.RecordContactAttempt, outcome="contacted")
    case.do(cmd.RecordAssessment, support_level="2", measures=[wemwbs()])

    decision = case.do(cmd.AgreePlan, goal_count=1)

    assert only(decision, oc.EngagementAchieved).episode == 2
    assert case.state.past_episodes[0].outcomes == ["engagement"]
    assert case.state.episode.outcomes == ["engagement"]


def test_no_engagement_without_a_baseline_measure() -> None:
    case = at_stage("planning", baseline=[])

    decision = case.do(cmd.AgreePlan, goal_count=2)

    assert types(decision) == [ev.PlanAgreed]
    assert case.state.episode.outcomes == []


# --- wellbeing at the review ---------------------------------------------------------------


def test_review_pairs_each_measure_with_its_baseline_and_flags_improvement() -> None:
    case = two_measures()
    case.do(cmd.AgreePlan, goal_count=1)
    assessment_id = case.state.episode.evidence["assessment"][0]

    decision = case.send(
        review_at_due(
            case,
            decision="ongoing_support",
            measures=[wemwbs(WEMWBS_SAME), measure("ONS4", ONS4_BETTER)],
        )
    )

    review_id = decision.events[0][0]
    reviewed = only(decision, oc.WellbeingReviewed)
    assert [(p.baseline.instrument, p.followup.instrument, p.improved) for p in reviewed.pairs] == [
        ("WEMWBS", "WEMWBS", False),
        ("ONS4", "ONS4", True),
    ]
    wemwbs_pair = reviewed.pairs[0]
    assert (wemwbs_pair.baseline.raw, wemwbs_pair.followup.raw) == (
        {"total": 28},
        {"total": 30},
    )
    assert reviewed.evidence_event_ids == [assessment_id, review_id]
    assert only(decision, ev.ReferralReviewed).improved_instruments == ["ONS4"]
    assert "wellbeing_reviewed" in case.state.episode.outcomes


def test_a_review_only_compares_the_instruments_measured_again() -> None:
    case = two_measures()
    case.do(cmd.AgreePlan, goal_count=1)

    decision = case.send(
        review_at_due(case, decision="ongoing_support", measures=[measure("ONS4", ONS4_SAME)])
    )

    [pair] = only(decision, oc.WellbeingReviewed).pairs
    assert (pair.followup.instrument, pair.improved) == ("ONS4", False)


def test_a_review_without_measures_states_no_wellbeing_outcome() -> None:
    case = at_stage("supported")

    decision = case.send(review_at_due(case, decision="new_plan"))

    assert outcomes_in(decision.events) == []
    assert "wellbeing_reviewed" not in case.state.episode.outcomes


def test_wellbeing_is_reviewed_once_per_episode() -> None:
    case = at_stage("supported")
    first = case.send(review_at_due(case, decision="new_plan", measures=[wemwbs(WEMWBS_HIGH)]))
    case.do(cmd.AgreePlan, goal_count=1)

    second = case.send(review_at_due(case, decision="dormant", measures=[wemwbs(WEMWBS_HIGH)]))

    assert outcomes_in(first.events) == [oc.WellbeingReviewed]
    assert outcomes_in(second.events) == []
    assert only(second, ev.ReferralReviewed).improved_instruments == ["WEMWBS"]


# --- sustained at the follow-up ------------------------------------------------------------


def test_followup_states_the_sustained_outcome_against_the_baseline() -> None:
    case = at_stage("supported")
    case.send(review_at_due(case, decision="dormant", measures=[wemwbs(WEMWBS_SAME)]))
    case.at(case.state.episode.deadlines["followup"])

    decision = case.do(cmd.RecordFollowup, measures=[wemwbs(WEMWBS_HIGH)])

    sustained = only(decision, oc.SustainedReviewed)
    [pair] = sustained.pairs
    assert (pair.baseline.raw, pair.followup.raw, pair.improved) == (
        {"total": 28},
        {"total": 42},
        True,
    )
    assert sustained.evidence_event_ids == [
        case.state.episode.evidence["assessment"][0],
        decision.events[0][0],
    ]
    assert sustained.episode == 1
    assert case.state.episode.outcomes == ["engagement", "wellbeing_reviewed", "sustained_reviewed"]


def test_followup_without_improvement_still_states_the_comparison() -> None:
    case = at_stage("supported")
    case.send(review_at_due(case, decision="ongoing_support"))

    decision = case.do(
        cmd.RecordFollowup, measures=[wemwbs(WEMWBS_SAME)], early_reason_code="moving"
    )

    assert [p.improved for p in only(decision, oc.SustainedReviewed).pairs] == [False]


def test_no_outcome_at_all_without_a_baseline() -> None:
    case = at_stage("planning", baseline=[])
    case.do(cmd.AgreePlan, goal_count=1)
    case.send(review_at_due(case, decision="ongoing_support"))

    with pytest.raises(Rejected, match=r"WEMWBS has no baseline .* \(baseline measures: none\)"):
        case.do(cmd.RecordFollowup, measures=[wemwbs()], early_reason_code="moving")

    assert outcomes_in(case.events) == []
    assert case.state.episode.outcomes == []
