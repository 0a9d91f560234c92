"""One realistic example of every event type, for the published docs and the tests.

Every id is a pseudonymous one: random UUIDs and partner codes, never anything derived
from a person. A test fails when a registered type has no example here, so adding an
event type means adding its example.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from events import (
    casework,
    completion,
    fund,
    handoff,
    outcome,
    payment,
    provider,
    referral,
    topics,
)
from events.catalogue import EventData
from events.envelope import CloudEvent, new_event

LINKWAY_SOURCE = "urn:linkway:pathway"  # the default LINKWAY_EVENT_SOURCE
PROVIDER_SOURCE_PREFIX = "urn:linkway:provider:"

REFERRAL_ID = "5b0e6f5e-8f43-4c43-9a39-1f7c2d8e4a10"
HANDOFF_ID = "c3a1d2e4-7b6f-4e0a-8d1c-2f9e5a7b3c61"
PROVIDER_ID = "walking-group"
FUND_ID = "8e1f3a5c-7b9d-4f2e-a6c8-0d2e4f6a8b1c"
_COMMON = {"referral_id": REFERRAL_ID, "partner_id": "north-wellbeing", "locality": "oswestry"}
_EVIDENCE = ["0b7c5d3e-1f2a-4b6c-9d8e-7f6a5b4c3d21", "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c65"]


def _at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 30, tzinfo=UTC)


def _swemwbs(total: int, metric: float, month: int, day: int) -> referral.MeasureScores:
    return referral.MeasureScores(
        measurement_id=str(uuid5(NAMESPACE_URL, f"linkway.example/measure/{month}-{day}")),
        instrument="SWEMWBS",
        version="1.0",
        raw={"total": total},
        derived={"metric": metric},
        administered_at=_at(month, day),
    )


BASELINE = _swemwbs(21, 19.25, 5, 12)
MIDPOINT = _swemwbs(23, 20.73, 6, 25)
REVIEW = _swemwbs(25, 22.35, 8, 11)
FOLLOWUP = _swemwbs(26, 23.21, 11, 10)


ACTIVITY_ID = "7d2e9f10-3c4b-4a5d-9e6f-0a1b2c3d4e5f"
_ACTIVITY: dict[str, Any] = {
    "activity_id": ACTIVITY_ID,
    "link_worker_id": "lw-0042",
    "activity_type": "home_visit",
    "direct": True,
    "started_at": _at(6, 2),
    "minutes": 55,
    "note_recorded": True,
}


def _lifecycle(stage: str, month: int, day: int, **extra: Any) -> dict[str, Any]:
    return {**_COMMON, "episode": 1, "stage": stage, "occurred_at": _at(month, day), **extra}


def _outcome(month: int, day: int, **extra: Any) -> dict[str, Any]:
    fact = {**_COMMON, "episode": 1, "occurred_at": _at(month, day)}
    return {**fact, "evidence_event_ids": _EVIDENCE, "consent_recorded": True, **extra}


_REFERRER = {"source": "gp", "referrer_org_id": "gp-practice-m82004", "reason_codes": ["lonely"]}
_PAIR = outcome.MeasurePair(baseline=BASELINE, followup=REVIEW, improved=True)

EXAMPLES: dict[str, EventData] = {
    e.TYPE: e
    for e in [
        referral.ReferralReceived(
            **_lifecycle("triage", 4, 28), **_REFERRER, consent_to_share=True
        ),
        referral.ReferralReentered(
            **{**_lifecycle("triage", 12, 1), "episode": 2}, previous_episode=1, **_REFERRER
        ),
        referral.ReferralJoined(
            **_lifecycle("assessment", 5, 6),
            source="social_care",
            referrer_org_id="asc-demo-county",
            reason_codes=["carer_strain"],
        ),
        referral.ConsentGiven(**_lifecycle("contacting", 5, 2)),
        referral.ReferralAccepted(**_lifecycle("contacting", 4, 29), first_contact_due=_at(5, 6)),
        referral.ReferralDeclined(**_lifecycle("dormant", 4, 29), reason_code="out_of_area"),
        referral.LinkWorkerAssigned(**_lifecycle("contacting", 4, 29), link_worker_id="lw-0042"),
        referral.ContactAttempted(
            **_lifecycle("contacting", 5, 1), attempt=1, outcome="no_answer", method="phone"
        ),
        referral.UnableToContact(**_lifecycle("dormant", 5, 9), attempts=3),
        referral.ReferralAssessed(
            **_lifecycle("planning", 5, 12), support_level="2", baseline=[BASELINE]
        ),
        referral.PlanAgreed(
            **_lifecycle("supported", 5, 14),
            plan_version=1,
            goal_count=2,
            prescriptions=[
                referral.PrescriptionRef(
                    handoff_id=HANDOFF_ID, provider_id=PROVIDER_ID, service_id="health-walks"
                )
            ],
            midpoint_due=_at(6, 25),
            review_due=_at(8, 14),
        ),
        referral.CheckinRecorded(
            **_lifecycle("supported", 6, 25),
            on_track=True,
            measures=[MIDPOINT],
            improved_instruments=[],
        ),
        casework.ActivityLogged(**_lifecycle("supported", 6, 2), **_ACTIVITY),
        casework.ActivityCorrected(**_lifecycle("supported", 6, 3), **{**_ACTIVITY, "minutes": 50}),
        casework.ActivityDeleted(
            **_lifecycle("supported", 6, 4), activity_id=ACTIVITY_ID, reason_code="logged_in_error"
        ),
        casework.GoalsUpdated(
            **_lifecycle("ongoing_support", 8, 11),
            phase="review",
            plan_version=1,
            goals=[
                casework.GoalState(
                    goal=1,
                    category="family_friends",
                    target_date=date(2026, 8, 1),
                    status="achieved",
                    at_review="achieved",
                    words_recorded=True,
                ),
                casework.GoalState(
                    goal=2,
                    category="work_volunteering",
                    status="in_progress",
                    at_review="in_progress",
                    words_recorded=False,
                ),
            ],
        ),
        casework.Signposted(
            **_lifecycle("supported", 5, 20),
            plan_version=1,
            signposts=[
                casework.SignpostRef(
                    service_id="citizens-advice-benefits", category="benefits_advice"
                ),
                casework.SignpostRef(category="community_transport"),
            ],
            check_due=_at(6, 17),
        ),
        casework.SignpostChecked(**_lifecycle("dormant", 6, 17), outcome="connected"),
        referral.ReferralReviewed(
            **_lifecycle("ongoing_support", 8, 11),
            decision="ongoing_support",
            followup=[REVIEW],
            improved_instruments=["SWEMWBS"],
            followup_due=_at(11, 11),
        ),
        referral.FollowupRecorded(
            **_lifecycle("ongoing_support", 11, 10),
            measures=[FOLLOWUP],
            sustained_instruments=["SWEMWBS"],
        ),
        referral.ActionDue(
            **_lifecycle("supported", 5, 28),
            action="provider_response",
            due_at=_at(5, 28),
            handoff_id=HANDOFF_ID,
        ),
        referral.ReferralDormant(**_lifecycle("dormant", 11, 12), reason_code="review_complete"),
        completion.CompletionReported(
            **_lifecycle("dormant", 11, 13),
            report_version=1,
            ended_reason="review_complete",
            goal_count=2,
            goals=[
                completion.GoalResult(goal=1, achieved="achieved"),
                completion.GoalResult(goal=2, achieved="partly_achieved"),
            ],
            measures=[
                completion.MeasureChange(
                    instrument="SWEMWBS",
                    baseline=BASELINE,
                    review=REVIEW,
                    followup=FOLLOWUP,
                    improved_at_review=True,
                    improved_at_followup=True,
                )
            ],
            services=[
                completion.ServiceUsed(
                    handoff_id=HANDOFF_ID,
                    provider_id=PROVIDER_ID,
                    service_id="walks",
                    status="completed",
                    sessions_attended=8,
                    delivered_code="course_completed",
                )
            ],
            attended_sessions=8,
            ongoing_plan=["self_managing", "continue_service"],
            own_words_recorded=True,
        ),
        referral.ConsentWithdrawn(**_lifecycle("supported", 7, 1), cancelled_handoffs=[HANDOFF_ID]),
        referral.DueDatesChanged(
            **_lifecycle("supported", 8, 10), deadline="review", due_at=_at(8, 21)
        ),
        handoff.HandoffRequested(
            handoff_id=HANDOFF_ID,
            referral_id=REFERRAL_ID,
            episode=1,
            provider_id=PROVIDER_ID,
            service_id="health-walks",
            support_level="2",
            respond_by=_at(5, 28),
            occurred_at=_at(5, 14),
        ),
        handoff.HandoffStatusChanged(
            handoff_id=HANDOFF_ID,
            referral_id=REFERRAL_ID,
            episode=1,
            provider_id=PROVIDER_ID,
            status="accepted",
            occurred_at=_at(5, 16),
        ),
        handoff.HandoffAttendanceRecorded(
            handoff_id=HANDOFF_ID,
            referral_id=REFERRAL_ID,
            episode=1,
            provider_id=PROVIDER_ID,
            session_date=date(2026, 5, 21),
            status="attended",
            occurred_at=_at(5, 21),
        ),
        handoff.HandoffUpdated(
            handoff_id=HANDOFF_ID,
            referral_id=REFERRAL_ID,
            episode=1,
            provider_id=PROVIDER_ID,
            status="completed",
            delivered_code="course_completed",
            sessions_delivered=8,
            occurred_at=_at(8, 28),
        ),
        provider.ProviderResponse(
            handoff_id=HANDOFF_ID,
            referral_id=REFERRAL_ID,
            provider_id=PROVIDER_ID,
            decision="waitlist",
            waitlist_band="under_1_month",
            occurred_at=_at(5, 16),
        ),
        provider.AttendanceReported(
            handoff_id=HANDOFF_ID,
            referral_id=REFERRAL_ID,
            provider_id=PROVIDER_ID,
            session_date=date(2026, 6, 3),
            status="attended",
            occurred_at=_at(6, 3, 15),
        ),
        outcome.EngagementAchieved(**_outcome(5, 14), baseline=[BASELINE]),
        outcome.ConnectionAchieved(**_outcome(6, 17), attended_sessions=3),
        outcome.WellbeingReviewed(**_outcome(8, 11), pairs=[_PAIR]),
        outcome.SustainedReviewed(
            **_outcome(11, 10),
            pairs=[outcome.MeasurePair(baseline=BASELINE, followup=FOLLOWUP, improved=True)],
        ),
        outcome.CompletionAchieved(
            **_outcome(11, 20),
            report_version=1,
            goal_count=3,
            goals_achieved=2,
            goals_partly_achieved=1,
            ongoing_plan=["self_managing", "continue_service"],
            attended_sessions=8,
        ),
        outcome.DistalChange(
            **_outcome(12, 1),
            measure="gp_appointments",
            window_months=6,
            before_from=date(2025, 11, 1),
            before_to=date(2026, 4, 30),
            after_from=date(2026, 6, 1),
            after_to=date(2026, 11, 30),
            before_count=9,
            after_count=4,
        ),
        payment.ClaimStatusChanged(
            claim_id="6f1d2c3b-4a5e-5f60-8a7b-9c0d1e2f3a4b",
            contract_id="demo-county-sp-2026",
            referral_id=REFERRAL_ID,
            episode=1,
            metric="M1",
            partner_id="north-wellbeing",
            status="claimed",
            amount_pence=25_000,
            rate_card_version="2026.1",
            ledger_entry_hash="9f2b7c1e4d8a3f6b0c5e2d9a7f4b1c8e3d6a0f5b2c9e7d4a1f8b3c6e0d5a2f7b",
            occurred_at=_at(5, 14, 11),
        ),
        fund.FundOpened(
            fund_id=FUND_ID,
            contract_id="demo-county-sp-2026",
            period="2026-27",
            budget_pence=500_000,
            purposes=["physical_activity", "travel", "equipment"],
            max_grant_pence=15_000,
            occurred_at=_at(4, 1, 9),
        ),
        fund.FundBudgetChanged(
            fund_id=FUND_ID,
            budget_pence=650_000,
            previous_budget_pence=500_000,
            reason_code="in_year_top_up",
            occurred_at=_at(9, 1, 9),
        ),
        fund.GrantStatusChanged(
            grant_id="2d4f6a8c-0e1b-4c3d-9e5f-7a9b1c3d5e7f",
            fund_id=FUND_ID,
            referral_id=REFERRAL_ID,
            goal_id="goal-1",
            partner_id="north-wellbeing",
            purpose="physical_activity",
            status="approved",
            amount_pence=4_500,
            spent_pence=0,
            occurred_at=_at(5, 20, 14),
        ),
    ]
}


def example(type_: str) -> EventData:
    try:
        return EXAMPLES[type_]
    except KeyError:
        raise KeyError(f"no example for {type_}: add one to events/examples.py") from None


def source_for(data: EventData) -> str:
    """The CloudEvents ``source``: Linkway's own, or the producing provider's URN."""
    if data.TOPIC in topics.INBOUND:
        return PROVIDER_SOURCE_PREFIX + data.model_dump()["provider_id"]
    return LINKWAY_SOURCE


def example_event(type_: str) -> CloudEvent:
    """The example wrapped in its envelope, with a stable id so generated docs never drift."""
    data = example(type_)
    fields = data.model_dump()  # every event names its referral (or fund) and when
    return new_event(
        type_,
        str(fields["fund_id"] if data.TOPIC == topics.FUND else fields["referral_id"]),
        data.model_dump(mode="json"),
        source_for(data),
        event_id=str(uuid5(NAMESPACE_URL, f"https://linkway.example/events/{type_}")),
        time=fields["occurred_at"],
    )
