"""Inbound events that Tier Two providers produce: responses and attendance.

These are the only events Linkway accepts from outside, so they are validated strictly;
anything that fails goes to the topic's dead-letter topic with the reason.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import model_validator

from events import topics
from events.catalogue import EventData, event_type
from events.ids import Code, Id


@event_type(
    "linkway.provider.response.v1",
    topics.PROVIDER_RESPONSES,
    "A provider accepts or rejects a handoff, or answers with its capacity.",
)
class ProviderResponse(EventData):
    handoff_id: Id
    referral_id: Id
    provider_id: Id
    decision: Literal["accept", "reject", "waitlist"]
    reason_code: Code | None = None
    waitlist_band: Literal["under_1_month", "1_to_3_months", "over_3_months"] | None = None
    occurred_at: datetime

    @model_validator(mode="after")
    def _reason_and_band(self) -> ProviderResponse:
        if self.decision == "reject" and not self.reason_code:
            raise ValueError("a rejection needs a reason_code")
        if self.decision == "waitlist" and not self.waitlist_band:
            raise ValueError("a waitlist answer needs a waitlist_band")
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
