"""What the provider routes (``api.providers``) take and answer: strict bodies, since a
field the API does not know (a free-text reason, a date) would otherwise be dropped
without the sender knowing, and the shapes a provider reads back."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from events.ids import Code

WaitlistBand = Literal["under_1_month", "1_to_3_months", "over_3_months"]
AttendanceStatus = Literal[
    "attended", "did_not_attend", "cancelled_by_person", "cancelled_by_provider"
]


class ProviderHandoff(BaseModel):
    handoff_id: str
    referral_id: str
    episode: int
    service_id: str
    status: str = Field(description="FHIR Task status: requested, accepted, in-progress...")
    reason_code: str | None
    waitlist_band: str | None
    requested_at: datetime
    respond_by: datetime | None = Field(description="Absent once the provider has answered.")
    support_level: str | None
    attended: int
    delivered_code: str | None = Field(
        default=None, description="What was delivered, once reported completed."
    )
    sessions_delivered: int | None = None


# Bodies refuse unknown fields, as casework bodies do: a field the API does not know
# (a free-text reason, a date) would otherwise be dropped without the sender knowing.
class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason_code: Code


class Waitlist(BaseModel):
    model_config = ConfigDict(extra="forbid")

    waitlist_band: WaitlistBand


class Completion(BaseModel):
    delivered_code: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9_.-]+$",
        description="What was delivered, as a code (e.g. course_completed).",
    )
    sessions_delivered: int | None = Field(default=None, ge=0, le=1000)


class Attendance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_date: date = Field(
        description="not before the handoff was requested, nor after today (a day's grace)"
    )
    status: AttendanceStatus


class Submitted(BaseModel):
    event_id: str
    duplicate: bool = Field(description="True when this report had been received before.")


class RowResult(BaseModel):
    line: int
    handoff_id: str
    session_date: date
    status: str
    event_id: str
    duplicate: bool


class RowError(BaseModel):
    line: int
    handoff_id: str | None
    error: str


class BatchReport(BaseModel):
    applied: int
    duplicates: int
    rejected: int
    rows: list[RowResult]
    errors: list[RowError]


class Contact(BaseModel):
    """What a provider needs to make contact, and no more: no NHS number, date of birth,
    address or notes."""

    given_name: str
    family_name: str
    phone: str | None = None
    email: str | None = None
