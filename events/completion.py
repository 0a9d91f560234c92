"""The completion report and ongoing plan of an episode (Northamptonshire's contract asks
for one when an episode ends). Pseudonymous content only: the measures' scores, the
goals by number, the services used, the ongoing plan as codes. The person's own words
are kept in the personal-data store; the event says only whether there are any.

It is the evidence for a completion outcome and feeds the message back to the referrer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from events import topics
from events.casework import GoalStatus
from events.catalogue import EventData, event_type
from events.ids import Code, Id
from events.referral import MeasureScores, ReferralEvent

Achieved = Literal["achieved", "partly_achieved", "not_achieved"]


class GoalResult(EventData):
    goal: int = Field(ge=1, le=20, description="The goal's number in the plan (1..goal_count).")
    achieved: Achieved
    category: Code | None = Field(default=None, description="The goal's category, if structured.")
    at_review: GoalStatus | None = Field(default=None, description="Its status at the review.")
    at_followup: GoalStatus | None = Field(
        default=None, description="Its status at the sustained-outcome follow-up."
    )


class MeasureChange(EventData):
    """One instrument at baseline, mid-point, review and follow-up, and whether it
    improved by the instrument's own rule (None: not measured then, or not comparable)."""

    instrument: str
    baseline: MeasureScores | None = None
    midpoint: MeasureScores | None = None
    review: MeasureScores | None = None
    followup: MeasureScores | None = None
    improved_at_midpoint: bool | None = None
    improved_at_review: bool | None = None
    improved_at_followup: bool | None = None


class ServiceUsed(EventData):
    handoff_id: Id
    provider_id: Id
    service_id: Id
    status: str
    sessions_attended: int = Field(ge=0)
    delivered_code: str | None = None


@event_type(
    "linkway.referral.completion_reported.v1",
    topics.REFERRALS,
    "The link worker recorded the episode's completion report and ongoing plan.",
)
class CompletionReported(ReferralEvent):
    report_version: int = Field(ge=1, description="Recorded again: the latest counts.")
    status: Literal["draft", "final"] = Field(
        default="final",
        description="A draft is still being gone over with the person; final is the record.",
    )
    ended_reason: str | None
    goal_count: int = Field(ge=0)
    goals: list[GoalResult] = Field(max_length=20)
    measures: list[MeasureChange] = Field(max_length=20)
    services: list[ServiceUsed] = Field(max_length=100)
    attended_sessions: int = Field(ge=0)
    ongoing_plan: list[Code] = Field(
        max_length=20, description="Codes, e.g. self_managing, continue_service."
    )
    own_words_recorded: bool = Field(
        description="The person's own words are in the personal-data store (never here)."
    )
