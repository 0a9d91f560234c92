"""Referral lifecycle events (topic ``linkway.referrals``), one per pathway transition.

Every event names the pseudonymous referral id, the episode and the stage the referral
is in after the change. Reasons are codes; free text never leaves the personal-data store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from events import topics
from events.catalogue import EventData, event_type
from events.ids import Code, Id

Stage = Literal[
    "triage",
    "contacting",
    "assessment",
    "planning",
    "supported",
    "review",
    "ongoing_support",
    "dormant",
]


class ReferralEvent(EventData):
    referral_id: Id
    episode: int = Field(ge=1)
    partner_id: Id
    locality: Id
    stage: Stage
    occurred_at: datetime


@event_type("linkway.referral.received.v1", topics.REFERRALS, "A referral was made (new case).")
class ReferralReceived(ReferralEvent):
    source: Code = Field(description="Kind of referrer: gp, social_care, hospital, self, ...")
    referrer_org_id: Id
    reason_codes: list[Code] = Field(default_factory=list, max_length=20)
    consent_to_share: bool


@event_type(
    "linkway.referral.reentered.v1",
    topics.REFERRALS,
    "A person with a case came back: a new episode began.",
)
class ReferralReentered(ReferralEvent):
    previous_episode: int = Field(ge=1)
    source: Code
    referrer_org_id: Id
    reason_codes: list[Code] = Field(default_factory=list, max_length=20)


@event_type(
    "linkway.referral.joined.v1",
    topics.REFERRALS,
    "A further referral arrived while an episode was active; it joined that episode.",
)
class ReferralJoined(ReferralEvent):
    source: Code
    referrer_org_id: Id
    reason_codes: list[Code] = Field(default_factory=list, max_length=20)


@event_type(
    "linkway.referral.consent_given.v1",
    topics.REFERRALS,
    "The person gave (or gave again) consent to share with providers.",
)
class ConsentGiven(ReferralEvent):
    pass


@event_type("linkway.referral.accepted.v1", topics.REFERRALS, "Triage accepted the referral.")
class ReferralAccepted(ReferralEvent):
    first_contact_due: datetime


@event_type(
    "linkway.referral.declined.v1",
    topics.REFERRALS,
    "Triage declined the referral; the referrer is told the reason.",
)
class ReferralDeclined(ReferralEvent):
    reason_code: Code


@event_type(
    "linkway.referral.link_worker_assigned.v1",
    topics.REFERRALS,
    "A link worker was assigned or reassigned.",
)
class LinkWorkerAssigned(ReferralEvent):
    link_worker_id: Id


@event_type(
    "linkway.referral.contact_attempted.v1",
    topics.REFERRALS,
    "The link worker tried to contact the person.",
)
class ContactAttempted(ReferralEvent):
    attempt: int = Field(ge=1)
    outcome: Literal["contacted", "no_answer", "message_left", "wrong_details"]
    method: Literal["phone", "text", "email", "letter", "visit"]


@event_type(
    "linkway.referral.unable_to_contact.v1",
    topics.REFERRALS,
    "Contact attempts were exhausted; the case goes dormant.",
)
class UnableToContact(ReferralEvent):
    attempts: int = Field(ge=0)


class MeasureScores(EventData):
    measurement_id: Id
    instrument: str
    version: str
    raw: dict[str, float]
    derived: dict[str, str | float]
    administered_at: datetime


# What a person may consent to, each separately: sharing their details with Tier Two
# providers, using their outcome data as evidence for payment, and evaluation.
ConsentPurpose = Literal["provider_sharing", "payment_evidence", "evaluation"]


@event_type(
    "linkway.referral.assessed.v1",
    topics.REFERRALS,
    "The assessment was recorded with its baseline measures.",
)
class ReferralAssessed(ReferralEvent):
    support_level: str
    baseline: list[MeasureScores] = Field(max_length=20)
    consent_purposes: list[ConsentPurpose] | None = Field(
        default=None,
        max_length=3,
        description=(
            "The purposes beyond sharing with providers the person consented to, asked "
            "separately at the assessment (payment_evidence, evaluation); null when they "
            "were not asked (earlier producers, or an assessment recorded without them)."
        ),
    )


class PrescriptionRef(EventData):
    handoff_id: Id
    provider_id: Id
    service_id: Id


@event_type(
    "linkway.referral.plan_agreed.v1",
    topics.REFERRALS,
    "A personal plan was agreed (or revised); prescriptions become handoffs.",
)
class PlanAgreed(ReferralEvent):
    plan_version: int = Field(ge=1)
    goal_count: int = Field(ge=0)
    prescriptions: list[PrescriptionRef] = Field(max_length=50)
    midpoint_due: datetime | None
    review_due: datetime


@event_type(
    "linkway.referral.checkin_recorded.v1",
    topics.REFERRALS,
    "The mid-point check-in was recorded, with mid-point measures if any were taken.",
)
class CheckinRecorded(ReferralEvent):
    on_track: bool
    measures: list[MeasureScores] = Field(
        default_factory=list, max_length=20, description="Mid-point measures, if any."
    )
    improved_instruments: list[str] = Field(
        default_factory=list, description="Improved on the baseline by the instrument's rule."
    )


@event_type(
    "linkway.referral.reviewed.v1",
    topics.REFERRALS,
    "The review was recorded with follow-up measures and a decision.",
)
class ReferralReviewed(ReferralEvent):
    decision: Literal["new_plan", "ongoing_support", "dormant"]
    followup: list[MeasureScores] = Field(max_length=20)
    improved_instruments: list[str]
    followup_due: datetime | None


@event_type(
    "linkway.referral.followup_recorded.v1",
    topics.REFERRALS,
    "The sustained-outcome follow-up measures were recorded.",
)
class FollowupRecorded(ReferralEvent):
    measures: list[MeasureScores] = Field(max_length=20)
    sustained_instruments: list[str]


@event_type(
    "linkway.referral.action_due.v1",
    topics.REFERRALS,
    "A deadline passed: an action is due from the link worker.",
)
class ActionDue(ReferralEvent):
    action: Literal[
        "first_contact",
        "midpoint_checkin",
        "review",
        "followup",
        "provider_response",
        "disengagement",
        "signpost_check",
    ] = Field(
        description="What is due. signpost_check: a level 1 (signposting) plan's check, "
        "which takes the review's place on the short path."
    )
    due_at: datetime
    handoff_id: str | None = None


@event_type(
    "linkway.referral.dormant.v1",
    topics.REFERRALS,
    "The episode went dormant. The case is never closed; the person can come back.",
)
class ReferralDormant(ReferralEvent):
    reason_code: Literal[
        "declined", "unable_to_contact", "review_complete", "disengaged", "withdrawn"
    ]


@event_type(
    "linkway.referral.consent_withdrawn.v1",
    topics.REFERRALS,
    "The person withdrew consent to share with providers; open handoffs are cancelled.",
)
class ConsentWithdrawn(ReferralEvent):
    cancelled_handoffs: list[str] = Field(max_length=50)


@event_type(
    "linkway.referral.due_dates_changed.v1",
    topics.REFERRALS,
    "A link worker rescheduled a due date.",
)
class DueDatesChanged(ReferralEvent):
    deadline: str
    due_at: datetime
