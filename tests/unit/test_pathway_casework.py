"""Casework rules: assessment, the personal plan, check-in, review and follow-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events import referral as ev
from events.handoff import HandoffRequested, HandoffStatusChanged, HandoffUpdated
from pathway import commands as cmd
from pathway.measures import MeasureError, default_registry
from pathway.rules import Rejected
from tests.unit.pathway_fixtures import (
    ONS4_LOW,
    WEMWBS_HIGH,
    WEMWBS_LOW,
    Case,
    at_stage,
    config,
    measure,
    only,
    prescription,
    types,
    wemwbs,
)

PLAN_AT = datetime(2027, 1, 13, 9, 0, tzinfo=UTC)  # when at_stage agrees the plan


def reviewed(decision: str = "ongoing_support", **fields: object) -> Case:
    """A supported case whose review has been recorded at its due date."""
    case = at_stage("supported")
    case.at(case.state.episode.deadlines["review"])
    case.do(cmd.RecordReview, decision=decision, **fields)
    return case


# --- assessment ----------------------------------------------------------------------------


def test_assessment_records_the_baseline_and_support_level_and_moves_to_planning() -> None:
    case = at_stage("assessment")

    decision = case.do(
        cmd.RecordAssessment,
        support_level="3",
        measures=[wemwbs(), measure("ONS4", ONS4_LOW, consent_ref="consent-9")],
    )

    ep = case.state.episode
    assert (ep.stage, ep.support_level) == ("planning", "3")
    assert sorted(ep.baseline) == ["ONS4", "WEMWBS"]
    event_id, assessed = decision.events[0]
    assert isinstance(assessed, ev.ReferralAssessed)
    assert (assessed.stage, assessed.support_level) == ("planning", "3")
    assert [(s.instrument, s.raw) for s in assessed.baseline] == [
        ("WEMWBS", {"total": 28}),
        ("ONS4", ONS4_LOW),
    ]
    assert assessed.baseline[1].derived["anxiety"] == "high"
    ons4 = ep.baseline["ONS4"]
    assert (ons4.administered_by, ons4.consent_ref, ons4.event_id) == (
        "lw-1",
        "consent-9",
        event_id,
    )
    assert ons4.administered_at == case.now
    assert ep.evidence["assessment"] == [event_id]


def test_assessment_accepts_the_commissioners_own_support_levels() -> None:
    levels = ("simple", "moderate", "complex")
    case = at_stage("assessment", cfg=config(support_levels=levels, levels={}))

    case.do(cmd.RecordAssessment, support_level="complex")

    assert case.state.episode.support_level == "complex"


def test_assessment_with_an_unknown_support_level_is_rejected() -> None:
    case = at_stage("assessment")

    with pytest.raises(Rejected, match=r"^support_level must be one of: 1, 2, 3$"):
        case.do(cmd.RecordAssessment, support_level="4")

    assert case.stage == "assessment"


@pytest.mark.parametrize(
    ("instrument", "answers"),
    [
        ("WEMWBS", WEMWBS_LOW | {"3": 6}),
        ("WEMWBS", {k: v for k, v in WEMWBS_LOW.items() if k != "14"}),
        ("ONS4", ONS4_LOW | {"happiness": 2.5}),
        ("GAD7", {"1": 1}),
    ],
    ids=["out_of_range", "missing_item", "not_whole", "unknown_instrument"],
)
def test_invalid_measure_answers_are_rejected_with_the_registrys_message(
    instrument: str, answers: dict[str, float]
) -> None:
    case = at_stage("assessment")
    with pytest.raises(MeasureError) as registry_error:
        default_registry().score(instrument, answers)

    with pytest.raises(Rejected) as raised:
        case.do(cmd.RecordAssessment, support_level="2", measures=[measure(instrument, answers)])

    assert str(raised.value) == str(registry_error.value)
    assert case.stage == "assessment" and case.state.episode.baseline == {}


def test_the_same_instrument_twice_in_one_assessment_is_rejected() -> None:
    case = at_stage("assessment")

    with pytest.raises(Rejected, match="an instrument was given twice"):
        case.do(cmd.RecordAssessment, support_level="2", measures=[wemwbs(), wemwbs()])


# --- the plan ------------------------------------------------------------------------------


def test_agreeing_a_plan_hands_each_prescription_to_its_provider() -> None:
    case = at_stage("planning")
    plan_at = case.now

    decision = case.do(
        cmd.AgreePlan,
        goal_count=3,
        prescriptions=[prescription("prov-a", "walks"), prescription("prov-b", "debt")],
    )

    assert types(decision)[0] is ev.PlanAgreed
    requested = [d for _, d in decision.events if isinstance(d, HandoffRequested)]
    assert [(r.provider_id, r.service_id) for r in requested] == [
        ("prov-a", "walks"),
        ("prov-b", "debt"),
    ]
    assert {r.respond_by for r in requested} == {plan_at + timedelta(days=10)}
    assert {r.support_level for r in requested} == {"2"}
    ep = case.state.episode
    assert (ep.stage, ep.plan_version, ep.goal_count, ep.first_plan_at) == (
        "supported",
        1,
        3,
        plan_at,
    )
    assert [(h.handoff_id, h.status) for h in ep.handoffs.values()] == [
        (r.handoff_id, "requested") for r in requested
    ]
    plan = only(decision, ev.PlanAgreed)
    assert [p.handoff_id for p in plan.prescriptions] == [r.handoff_id for r in requested]
    assert ep.deadlines == {
        "midpoint_checkin": plan_at + timedelta(weeks=6),
        "review": plan.review_due,
        "disengagement": plan_at + timedelta(days=28),
        **{f"provider_response:{r.handoff_id}": r.respond_by for r in requested},
    }
    assert plan.midpoint_due == plan_at + timedelta(weeks=6)


def test_review_is_due_three_months_after_plan_agreed() -> None:
    case = at_stage("planning")
    case.at(datetime(2027, 2, 10, 14, 30, tzinfo=UTC))

    decision = case.do(cmd.AgreePlan, goal_count=1)

    review_due = datetime(2027, 5, 10, 14, 30, tzinfo=UTC)
    assert case.state.episode.deadlines["review"] == review_due
    assert only(decision, ev.PlanAgreed).review_due == review_due


def test_review_is_due_on_the_last_day_of_a_shorter_month() -> None:
    case = at_stage("planning")
    case.at(datetime(2027, 1, 31, 10, 0, tzinfo=UTC))

    case.do(cmd.AgreePlan, goal_count=1)

    assert case.state.episode.deadlines["review"] == datetime(2027, 4, 30, 10, 0, tzinfo=UTC)


def test_first_contact_skips_a_weekend_and_a_bank_holiday() -> None:
    # Wednesday 28 April 2027; Monday 3 May is the early May bank holiday.
    case = at_stage("triage", now=datetime(2027, 4, 28, 10, 0, tzinfo=UTC))

    decision = case.do(cmd.AcceptReferral)

    due = datetime(2027, 5, 6, 10, 0, tzinfo=UTC)  # Thu 29, Fri 30, Tue 4, Wed 5, Thu 6
    assert case.state.episode.deadlines["first_contact"] == due
    assert only(decision, ev.ReferralAccepted).first_contact_due == due


def test_plan_durations_come_from_the_profile() -> None:
    cfg = config(review_after="60 seconds", midpoint_checkin_after="30 seconds")
    case = at_stage("planning", cfg=cfg)

    case.do(cmd.AgreePlan, goal_count=1)

    deadlines = case.state.episode.deadlines
    assert deadlines["review"] == case.now + timedelta(seconds=60)
    assert deadlines["midpoint_checkin"] == case.now + timedelta(seconds=30)


def test_a_plan_with_prescriptions_but_no_consent_is_rejected() -> None:
    case = at_stage("planning", consent=False)

    with pytest.raises(Rejected, match="not consented to share"):
        case.do(cmd.AgreePlan, goal_count=1, prescriptions=[prescription()])

    assert case.stage == "planning" and case.state.episode.handoffs == {}


def test_a_plan_without_prescriptions_needs_no_consent_and_sets_no_disengagement() -> None:
    case = at_stage("planning", consent=False)

    case.do(cmd.AgreePlan, goal_count=1)

    assert case.stage == "supported"
    assert sorted(case.state.episode.deadlines) == ["midpoint_checkin", "review"]


def test_revising_the_plan_while_supported_keeps_the_review_date() -> None:
    case = at_stage("supported")
    review_due = case.state.episode.deadlines["review"]
    case.later(days=20)

    decision = case.do(cmd.AgreePlan, goal_count=4, prescriptions=[prescription("prov-c")])

    ep = case.state.episode
    assert (ep.plan_version, ep.goal_count, len(ep.handoffs)) == (2, 4, 2)
    assert ep.deadlines["review"] == review_due
    assert only(decision, ev.PlanAgreed).review_due == review_due


def test_a_plan_agreed_in_ongoing_support_starts_a_new_review_cycle() -> None:
    case = at_stage("ongoing_support")
    case.later(days=3)

    decision = case.do(cmd.AgreePlan, goal_count=2)

    review_due = datetime(2027, 7, 16, 9, 0, tzinfo=UTC)  # reviewed 13 Apr, +3 days, +3 months
    assert case.now == datetime(2027, 4, 16, 9, 0, tzinfo=UTC)
    assert case.stage == "supported"
    assert case.state.episode.deadlines["review"] == review_due
    assert only(decision, ev.PlanAgreed).review_due == review_due
    assert case.state.episode.deadlines["midpoint_checkin"] == case.now + timedelta(weeks=6)


# --- check-in ------------------------------------------------------------------------------


def test_checkin_is_recorded_and_clears_the_midpoint() -> None:
    case = at_stage("supported")

    decision = case.do(cmd.RecordCheckin, on_track=False)

    assert only(decision, ev.CheckinRecorded).on_track is False
    assert "midpoint_checkin" not in case.state.episode.deadlines
    assert case.stage == "supported"


# --- review --------------------------------------------------------------------------------


def test_review_before_it_is_due_is_rejected() -> None:
    case = at_stage("supported")

    with pytest.raises(Rejected, match="review is not due until"):
        case.do(cmd.RecordReview, decision="ongoing_support")

    assert case.stage == "supported"


def test_review_before_it_is_due_is_accepted_with_an_early_reason() -> None:
    case = at_stage("supported")

    decision = case.do(
        cmd.RecordReview, decision="ongoing_support", early_reason_code="moving_away"
    )

    assert only(decision, ev.ReferralReviewed).decision == "ongoing_support"
    assert case.stage == "ongoing_support"


def test_review_at_its_due_time_needs_no_early_reason() -> None:
    case = reviewed("ongoing_support")

    assert case.stage == "ongoing_support"


def test_review_deciding_a_new_plan_returns_to_planning_and_opens_the_followup() -> None:
    case = at_stage("supported")
    assert case.state.episode.first_plan_at == PLAN_AT
    case.at(case.state.episode.deadlines["review"])

    decision = case.do(cmd.RecordReview, decision="new_plan", measures=[wemwbs(WEMWBS_HIGH)])

    ep = case.state.episode
    followup_due = datetime(2027, 7, 13, 9, 0, tzinfo=UTC)  # plan on 13 Jan + 6 months
    assert (ep.stage, ep.review_decision) == ("planning", "new_plan")
    assert "review" not in ep.deadlines and "midpoint_checkin" not in ep.deadlines
    assert ep.deadlines["followup"] == followup_due
    review = only(decision, ev.ReferralReviewed)
    assert (review.stage, review.followup_due) == ("planning", followup_due)
    assert review.improved_instruments == ["WEMWBS"]
    assert [s.raw for s in review.followup] == [{"total": 42}]


def test_review_deciding_ongoing_support_keeps_supporting() -> None:
    case = reviewed("ongoing_support")

    ep = case.state.episode
    assert (ep.stage, ep.review_decision) == ("ongoing_support", "ongoing_support")
    assert "followup" in ep.deadlines


def test_review_deciding_dormant_ends_the_episode_but_keeps_the_followup() -> None:
    case = at_stage("supported")
    case.at(case.state.episode.deadlines["review"])

    decision = case.do(cmd.RecordReview, decision="dormant")

    ep = case.state.episode
    assert (ep.stage, ep.dormant_reason, ep.ended_at) == ("dormant", "review_complete", case.now)
    assert list(ep.deadlines) == ["followup"]
    assert types(decision) == [
        ev.ReferralReviewed,
        HandoffStatusChanged,
        HandoffUpdated,
        ev.ReferralDormant,
    ]
    assert [(h.status, h.reason_code) for h in ep.handoffs.values()] == [
        ("cancelled", "review_complete")
    ]
    assert only(decision, ev.ReferralDormant).reason_code == "review_complete"


def test_review_of_an_instrument_with_no_baseline_is_rejected() -> None:
    case = at_stage("supported")

    with pytest.raises(Rejected, match="ONS4 has no baseline in this episode"):
        case.do(
            cmd.RecordReview,
            decision="ongoing_support",
            measures=[measure("ONS4", ONS4_LOW)],
            early_reason_code="moving_away",
        )


def test_followup_opens_no_earlier_than_the_review() -> None:
    case = at_stage("supported")
    # Reviewed 7 months after the plan: the 6-month follow-up is due at once.
    case.at(PLAN_AT + timedelta(days=213))

    decision = case.do(cmd.RecordReview, decision="ongoing_support")

    assert case.state.episode.deadlines["followup"] == case.now
    assert only(decision, ev.ReferralReviewed).followup_due == case.now


# --- follow-up -----------------------------------------------------------------------------


def test_followup_before_the_review_is_rejected() -> None:
    case = at_stage("supported")

    with pytest.raises(Rejected, match="no sustained-outcome follow-up is open"):
        case.do(cmd.RecordFollowup, measures=[wemwbs()], early_reason_code="x")


def test_followup_before_it_is_due_is_rejected() -> None:
    case = reviewed()

    with pytest.raises(Rejected, match="follow-up is not due until 13 Jul 2027 09:00"):
        case.do(cmd.RecordFollowup, measures=[wemwbs(WEMWBS_HIGH)])


def test_followup_without_a_baseline_for_its_instrument_is_rejected() -> None:
    case = reviewed()
    case.at(case.state.episode.deadlines["followup"])

    with pytest.raises(Rejected, match=r"no baseline .* \(baseline measures: WEMWBS\)"):
        case.do(cmd.RecordFollowup, measures=[measure("ONS4", ONS4_LOW)])

    assert "followup" in case.state.episode.deadlines


def test_followup_records_measures_and_states_the_sustained_outcome() -> None:
    case = reviewed()
    case.at(case.state.episode.deadlines["followup"])

    decision = case.do(cmd.RecordFollowup, measures=[wemwbs(WEMWBS_HIGH)])

    recorded = only(decision, ev.FollowupRecorded)
    assert recorded.sustained_instruments == ["WEMWBS"]
    assert [m.raw for m in recorded.measures] == [{"total": 42}]
    ep = case.state.episode
    assert "followup" not in ep.deadlines and "followup" not in ep.overdue
    assert ep.evidence["followup"] == [decision.events[0][0]]
    assert "sustained_reviewed" in ep.outcomes
    with pytest.raises(Rejected, match="no sustained-outcome follow-up is open"):
        case.do(cmd.RecordFollowup, measures=[wemwbs()])


def test_followup_can_be_recorded_early_with_a_reason() -> None:
    case = reviewed()

    decision = case.do(cmd.RecordFollowup, measures=[wemwbs()], early_reason_code="moving")

    assert only(decision, ev.FollowupRecorded).sustained_instruments == []
