"""Provider handoff events. Requests go to the provider's own topic; status changes go
to the referral lifecycle topic so link workers and the payment engine see them.

Statuses follow the HL7 FHIR SDOH Clinical Care (Gravity) Task state machine, so a
FHIR-speaking partner maps them 1:1.
"""

from __future__ import annotations

from datetime import datetime
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
