"""Inbound events that Tier Two providers produce: responses and attendance.

These are the only events Linkway accepts from outside, so they are validated strictly;
anything that fails goes to the topic's dead-letter topic with the reason.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, model_validator

from events import topics
from events.catalogue import EventData, event_type
from events.ids import Code, Id

# A provider's answers to a handoff. ``start``: the service has begun for the person
# (the FHIR Task's in-progress), before or without an attendance report.
ProviderDecision = Literal["accept", "start", "reject", "waitlist", "complete"]


@event_type(
    "linkway.provider.response.v1",
    topics.PROVIDER_RESPONSES,
    "A provider accepts or rejects a handoff, answers with its capacity, says the service "
    "has started, or reports it completed with what was delivered.",
)
class ProviderResponse(EventData):
    """``complete`` and its two fields, and ``start``, were added within v1: every v1
    message written before them is still valid, and only Linkway reads this event."""

    handoff_id: Id
    referral_id: Id
    provider_id: Id
    decision: ProviderDecision
    reason_code: Code | None = None
    waitlist_band: Literal["under_1_month", "1_to_3_months", "over_3_months"] | None = None
    delivered_code: Code | None = Field(
        default=None, description="With complete: what was delivered, e.g. course_completed."
    )
    sessions_delivered: int | None = Field(
        default=None, ge=0, le=1000, description="With complete, optionally: sessions held."
    )
    occurred_at: datetime

    @model_validator(mode="after")
    def _reason_and_band(self) -> ProviderResponse:
        if self.decision == "reject" and not self.reason_code:
            raise ValueError("a rejection needs a reason_code")
        if self.decision == "waitlist" and not self.waitlist_band:
            raise ValueError("a waitlist answer needs a waitlist_band")
        if self.decision == "complete" and not self.delivered_code:
            raise ValueError("a completion needs a delivered_code")
        if self.decision != "complete" and (
            self.delivered_code is not None or self.sessions_delivered is not None
        ):
            raise ValueError("delivered_code and sessions_delivered go only with complete")
        return self


@event_type(
    "linkway.provider.attendance.v1",
    topics.PROVIDER_ATTENDANCE,
    "A provider reports one session's attendance for a handoff.",
)
class AttendanceReported(EventData):
    handoff_id: Id
    referral_id: Id
    provider_id: Id
    session_date: date
    status: Literal["attended", "did_not_attend", "cancelled_by_person", "cancelled_by_provider"]
    occurred_at: datetime
