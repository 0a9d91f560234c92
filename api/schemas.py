"""The HTTP API's request and response bodies.

Only ``Person`` and ``Note`` carry personal data; they are read and written through the
personal-data store alone. Every other body carries codes and pseudonymous ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

from events.ids import Code, Id
from events.nhs_number import normalised_nhs_number
from infra.text import Line, Prose

# The read model hands times back naive on SQLite; they are UTC, and the API says so.
Instant = Annotated[
    datetime, AfterValidator(lambda v: v.replace(tzinfo=UTC) if v.tzinfo is None else v)
]


class Person(BaseModel):
    """Personal data: stored encrypted in the personal-data store, never sent anywhere."""

    model_config = ConfigDict(extra="forbid")

    given_name: Line = Field(min_length=1, max_length=100)
    family_name: Line = Field(min_length=1, max_length=100)
    nhs_number: str | None = Field(
        default=None,
        max_length=16,
        description="10 digits 0-9, check digit valid; spaces and hyphens are ignored",
    )
    date_of_birth: date | None = None
    phone: Line | None = Field(default=None, max_length=32)
    email: EmailStr | None = Field(default=None, max_length=254)
    address: Prose | None = Field(default=None, max_length=300)
    notes: Prose | None = Field(default=None, max_length=4000, description="the referrer's notes")
    what_matters_to_me: Prose | None = Field(
        default=None, max_length=4000, description="in the person's words, from assessment"
    )

    @field_validator("nhs_number")
    @classmethod
    def _check_digit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = normalised_nhs_number(value)
        if digits is None:
            raise ValueError("must be a valid NHS number: 10 digits 0-9 with a valid check digit")
        return digits


class ReferralRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locality: Id
    source: Code = Field(
        description="gp, social_care, mental_health, hospital, fire_service, voluntary, self",
    )
    referrer_org_id: Id
    reason_codes: list[Code] = Field(default_factory=list, max_length=20)
    consent_to_share: bool
    person: Person


class ReferralCreated(BaseModel):
    referral_id: str
    episode: int
    stage: str
    reentry: bool = Field(description="true when the person already had a case")


class CodedReason(BaseModel):
    code: str
    display: str = Field(description="the reason in words, for the referrer")


class ReferrerMilestone(BaseModel):
    status: str = Field(description="accepted, declined, first_contact, plan_agreed, ...")
    display: str
    at: Instant
    reason: CodedReason | None = None
    snomed_code: str | None = Field(default=None, description="SNOMED CT, where the UK codes it")


class CompletionSummary(BaseModel):
    """Shown only when the person consented to sharing."""

    goals_achieved: int
    goal_count: int
    sessions_attended: int
    improved_instruments: list[str]
    ongoing_plan: list[str]


class ReferralStatus(BaseModel):
    """What a referrer may know about a referral it made: where it is, each milestone and
    the reason of a decline or an ending; no plan detail, no personal data."""

    referral_id: str
    episode: int
    stage: str
    opened_at: Instant
    ended_at: Instant | None = None
    dormant_reason: str | None = None
    status: str = Field(
        description="received, accepted, declined, first_contact, assessed, plan_agreed, "
        "reviewed, ended or completed"
    )
    reason: CodedReason | None = Field(
        default=None, description="why it was declined or ended, coded and in words"
    )
    milestones: list[ReferrerMilestone]
    summary: CompletionSummary | None = None


class Page(BaseModel):
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class ReferralPage(Page):
    items: list[ReferralStatus]


class Episode(BaseModel):
    number: int
    stage: str
    opened_at: Instant
    ended_at: Instant | None
    source: str
    dormant_reason: str | None
    support_level: str | None
    attended_sessions: int
    outcomes: list[str]
    path: str = Field(description="full, or signposting (the level 1 short path)")


class Handoff(BaseModel):
    handoff_id: str
    episode: int
    provider_id: str
    service_id: str
    status: str
    reason_code: str | None
    waitlist_band: str | None
    requested_at: Instant
    attended: int
    delivered_code: str | None = Field(default=None, description="once completed: what")
    sessions_delivered: int | None = None


class Measure(BaseModel):
    measurement_id: str
    episode: int
    phase: Literal["baseline", "midpoint", "review", "followup"]
    instrument: str
    version: str
    raw: dict[str, float]
    derived: dict[str, str | float]
    administered_at: Instant


class Goal(BaseModel):
    number: int
    category: str
    words_note_id: str | None = Field(description="their words: a case note, read as notes are")
    target_date: date | None
    status: str
    at_review: str | None
    at_followup: str | None


class TrajectoryPoint(BaseModel):
    phase: Literal["baseline", "midpoint", "review", "followup"]
    administered_at: Instant
    raw: dict[str, float]
    derived: dict[str, str | float]


class Trajectory(BaseModel):
    instrument: str
    points: list[TrajectoryPoint]


class CaseloadItem(BaseModel):
    referral_id: str
    version: int = Field(description="send as expected_version with a command")
    episode: int
    stage: str
    locality: str
    partner_id: str
    link_worker_id: str | None
    support_level: str | None
    consent_to_share: bool
    opened_at: Instant
    next_due_at: Instant | None
    next_due_action: str | None
    actions_due: list[str] = Field(description="deadlines that passed, still to act on")
    path: str = Field(description="full, or signposting (the level 1 short path)")


class CaseloadPage(Page):
    items: list[CaseloadItem]


class Referral(CaseloadItem):
    """A referral with its episodes, handoffs, measures and due dates (no personal data)."""

    deadlines: dict[str, Instant]
    attended_sessions: int
    outcomes: list[str]
    episodes: list[Episode]
    handoffs: list[Handoff]
    measures: list[Measure]
    goals: list[Goal] = Field(description="the current plan's goals")
    trajectory: list[Trajectory] = Field(
        description="each instrument's scores in this episode, baseline to follow-up"
    )


class CommandAccepted(BaseModel):
    referral_id: str
    version: int
    episode: int
    stage: str
    activity_id: str | None = Field(
        default=None, description="log_activity: the id to correct or delete it by"
    )


class Activity(BaseModel):
    activity_id: str
    referral_id: str
    episode: int
    link_worker_id: str
    activity_type: str
    direct: bool
    started_at: Instant
    minutes: int
    note_recorded: bool = Field(description="a note is in the personal-data store")


class TimeSummary(BaseModel):
    key: str = Field(description="the referral, link worker or partner summed over")
    sessions: int
    minutes: int
    direct_minutes: int
    indirect_minutes: int
    by_type: dict[str, int] = Field(description="minutes per activity type (the mix)")


class ActivityList(BaseModel):
    items: list[Activity]
    summary: TimeSummary


class TimeSummaryList(BaseModel):
    since: Instant | None
    until: Instant | None
    items: list[TimeSummary]


class Capacity(BaseModel):
    link_worker_id: str
    partner_id: str
    open_cases: int = Field(description="referrals not dormant")
    actions_due: int = Field(description="deadlines in the next 7 days")
    actions_overdue: int = Field(description="deadlines passed, not yet acted on")
    started_last_12_months: int = Field(description="episodes opened in the last 12 months")
    annual_capacity: int = Field(description="the profile's annual_caseload_capacity")
    capacity_used: float = Field(description="started_last_12_months / annual_capacity")
    minutes_this_month: int = Field(description="time logged since the 1st (UTC)")


class CapacityList(BaseModel):
    items: list[Capacity]


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Prose = Field(min_length=1, max_length=4000)


class NoteCreated(BaseModel):
    """No text: a creating response is kept for Idempotency-Key replays, outside the
    personal-data store."""

    note_id: str
    author_id: str
    created_at: Instant


class Note(NoteCreated):
    text: str


class NoteList(BaseModel):
    items: list[Note]


class AuditEntry(BaseModel):
    id: int
    at: Instant
    actor_id: str
    partner_id: str
    action: str = Field(description="read, write, or match (a re-referral found the case)")
    resource: str = Field(description="person or notes")
    referral_id: str
    purpose: str


class AuditPage(Page):
    items: list[AuditEntry]


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details: never a stack trace or a value from the request."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = Field(
        default=None, description="the route's template, e.g. /referrals/{referral_id}"
    )
    errors: list[FieldError] | None = None
    correlation_id: str | None = Field(
        default=None, description="on a 500: quote it to the operator, who finds it in the log"
    )
