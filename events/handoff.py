"""Provider handoff events. Requests go to the provider's own topic; status changes go
to the referral lifecycle topic so link workers and the payment engine see them, and a
copy (``linkway.handoff.updated.v1``) goes to the provider's own topic, so a provider
reads every transition of its handoffs without any access to the referral lifecycle.

Statuses follow the HL7 FHIR SDOH Clinical Care (Gravity) Task state machine, so a
FHIR-speaking partner maps them 1:1.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from events import topics
from events.catalogue import EventData, event_type
from events.ids import Id

HandoffStatus = Literal[
    "requested",
    "accepted",
    "rejected",
    "in-progress",
    "completed",
    "failed",
    "on-hold",
    "cancelled",
]


@event_type(
    "linkway.handoff.requested.v1",
    topics.HANDOFFS_PREFIX + "{provider_id}",
    "A link worker handed a person to a provider's service. Contact details are fetched "
    "through the API under the provider's scope.",
)
class HandoffRequested(EventData):
    handoff_id: Id
    referral_id: Id
    episode: int = Field(ge=1)
    provider_id: Id
    service_id: Id
    support_level: str
    respond_by: datetime
    occurred_at: datetime


@event_type(
    "linkway.handoff.status_changed.v1",
    topics.REFERRALS,
    "A handoff moved to a new status (with a reason where FHIR requires one).",
)
class HandoffStatusChanged(EventData):
    handoff_id: Id
    referral_id: Id
    episode: int = Field(ge=1)
    provider_id: Id
    status: HandoffStatus
    reason_code: str | None = None
    occurred_at: datetime


@event_type(
    "linkway.handoff.updated.v1",
    topics.HANDOFFS_PREFIX + "{provider_id}",
    "The provider's own copy of a handoff's status change: cancelled (stop, and send "
    "nothing more), failed, completed (with what was delivered) and every other move.",
)
class HandoffUpdated(EventData):
    handoff_id: Id
    referral_id: Id
    episode: int = Field(ge=1)
    provider_id: Id
    status: HandoffStatus
    reason_code: str | None = None
    delivered_code: str | None = None
    sessions_delivered: int | None = None
    occurred_at: datetime


@event_type(
    "linkway.handoff.attendance_recorded.v1",
    topics.REFERRALS,
    "A provider's report of one session's attendance was applied to a handoff. A later "
    "report for the same handoff and session date is a correction: the latest one counts.",
)
class HandoffAttendanceRecorded(EventData):
    handoff_id: Id
    referral_id: Id
    episode: int = Field(ge=1)
    provider_id: Id
    session_date: date
    status: Literal["attended", "did_not_attend", "cancelled_by_person", "cancelled_by_provider"]
    occurred_at: datetime
