"""What can happen to a referral: commands (a link worker's decisions, sent as workflow
updates), partner facts (sent as signals) and deadlines (the workflow's own timers).

Every command carries a ``request_id`` (updates are idempotent by it, even around
continue-as-new), the pseudonymous id of the person acting, and optionally the version
of the referral the caller saw (a stale one is rejected: optimistic concurrency).
Only codes and pseudonymous ids travel here; free text stays in the personal-data store.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from events.casework import ActivityType, GoalStatus
from events.ids import ID_PATTERN, Code, Id
from events.provider import ProviderDecision


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Command(Message):
    request_id: Id
    actor_id: Id
    expected_version: int | None = Field(default=None, ge=0)


class AcceptReferral(Command):
    kind: Literal["accept"] = "accept"
    link_worker_id: Id | None = None


class DeclineReferral(Command):
    kind: Literal["decline"] = "decline"
    reason_code: Code


class AssignLinkWorker(Command):
    kind: Literal["assign"] = "assign"
    link_worker_id: Id


class RecordContactAttempt(Command):
    kind: Literal["contact_attempt"] = "contact_attempt"
    outcome: Literal["contacted", "no_answer", "message_left", "wrong_details"]
    method: Literal["phone", "text", "email", "letter", "visit"] = "phone"


class MeasureInput(Message):
    instrument: Id
    answers: dict[str, float] = Field(max_length=40)
    consent_ref: Id
    administered_at: datetime | None = None


class ConsentPurposes(Message):
    """Consent beyond sharing with providers, asked separately at the assessment: a person
    may refuse sharing and still agree that their outcomes evidence payment."""

    payment_evidence: bool
    evaluation: bool


class RecordAssessment(Command):
    kind: Literal["assessment"] = "assessment"
    support_level: Id
    measures: list[MeasureInput] = Field(default_factory=list, max_length=10)
    consent: ConsentPurposes | None = None  # None: not asked (outcomes say consent_recorded)


class PrescriptionInput(Message):
    provider_id: Id
    service_id: Id


class GoalInput(Message):
    """One goal of the plan: a category code (a Well-being Star area or one of the
    commissioner's ``goal_categories``), what the person wants in their own words by
    reference (a case note in the personal-data store), a target date and a status."""

    category: Code
    words_note_id: Id | None = None
    target_date: date | None = None
    status: GoalStatus = "not_started"


class GoalUpdate(Message):
    goal: int = Field(ge=1, le=20)
    status: GoalStatus


class SignpostInput(Message):
    """Information and signposting: a directory service, or (``service_id`` omitted)
    something outside the directory, described in a case note."""

    category: Code
    service_id: Id | None = None
    note_id: Id | None = None


class AgreePlan(Command):
    kind: Literal["plan"] = "plan"
    # Either a goal count (plans before structured goals) or the goals themselves.
    goal_count: int | None = Field(default=None, ge=1, le=20)
    goals: list[GoalInput] = Field(default_factory=list, max_length=20)
    prescriptions: list[PrescriptionInput] = Field(default_factory=list, max_length=20)
    signposts: list[SignpostInput] = Field(default_factory=list, max_length=20)


class RecordCheckin(Command):
    kind: Literal["checkin"] = "checkin"
    on_track: bool
    measures: list[MeasureInput] = Field(default_factory=list, max_length=10)
    goals: list[GoalUpdate] = Field(default_factory=list, max_length=20)


class RecordReview(Command):
    kind: Literal["review"] = "review"
    decision: Literal["new_plan", "ongoing_support", "dormant"]
    measures: list[MeasureInput] = Field(default_factory=list, max_length=10)
    early_reason_code: Code | None = None
    goals: list[GoalUpdate] = Field(default_factory=list, max_length=20)


class RecordFollowup(Command):
    kind: Literal["followup"] = "followup"
    measures: list[MeasureInput] = Field(min_length=1, max_length=10)
    early_reason_code: Code | None = None
    goals: list[GoalUpdate] = Field(default_factory=list, max_length=20)


class RecordSignpostCheck(Command):
    """The short path's end (level 1 signposting): did the person connect with what
    they were signposted to? ``needs_more_support`` moves them to a fuller level."""

    kind: Literal["signpost_check"] = "signpost_check"
    outcome: Literal["connected", "not_connected", "needs_more_support"]
    support_level: Id | None = None


class ActivityFields(Message):
    activity_type: ActivityType
    direct: bool
    started_at: datetime
    minutes: int = Field(ge=1, le=720)
    # Who spent the time; omitted: the person recording it.
    link_worker_id: Id | None = None
    # A note about it, stored first in the personal-data store (a case note).
    note_id: Id | None = None


class LogActivity(Command, ActivityFields):
    kind: Literal["log_activity"] = "log_activity"


class CorrectActivity(Command, ActivityFields):
    """Every field of the activity as it should be: a correction is a new fact."""

    kind: Literal["correct_activity"] = "correct_activity"
    activity_id: Id


class DeleteActivity(Command):
    kind: Literal["delete_activity"] = "delete_activity"
    activity_id: Id
    reason_code: Code


class ReEnter(Command):
    """A new referral for a person who has a case, or the person coming back."""

    kind: Literal["reenter"] = "reenter"
    source: Code
    referrer_org_id: Id
    reason_codes: list[Code] = Field(default_factory=list, max_length=20)


class EndEpisode(Command):
    """End the current episode: the person disengaged or chose to stop. The case stays
    open (dormant) so that they can come back."""

    kind: Literal["end_episode"] = "end_episode"
    reason_code: Literal["disengaged", "withdrawn"]


class WithdrawConsent(Command):
    kind: Literal["withdraw_consent"] = "withdraw_consent"


class GiveConsent(Command):
    kind: Literal["give_consent"] = "give_consent"


class CancelHandoff(Command):
    """A link worker cancels one handoff of the current episode; FHIR requires a reason."""

    kind: Literal["cancel_handoff"] = "cancel_handoff"
    handoff_id: Id
    reason_code: Code


class GoalOutcome(Message):
    goal: int = Field(ge=1, le=20)
    achieved: Literal["achieved", "partly_achieved", "not_achieved"]


class RecordCompletionReport(Command):
    """The ended episode's completion report and ongoing plan. The person's own words go
    to the personal-data store first (a case note); this names the note, never the text."""

    kind: Literal["completion_report"] = "completion_report"
    # A draft the link worker goes over with the person before finalising it; only a
    # final report tells the referrer the episode is completed.
    status: Literal["draft", "final"] = "final"
    goals: list[GoalOutcome] = Field(default_factory=list, max_length=20)
    ongoing_plan: list[Code] = Field(default_factory=list, max_length=20)
    own_words_note_id: Id | None = None


class RescheduleDeadline(Command):
    kind: Literal["reschedule"] = "reschedule"
    deadline: str = Field(min_length=1, max_length=80, pattern=ID_PATTERN)
    due_at: datetime


AnyCommand = (
    AcceptReferral
    | DeclineReferral
    | AssignLinkWorker
    | RecordContactAttempt
    | RecordAssessment
    | AgreePlan
    | RecordCheckin
    | RecordReview
    | RecordFollowup
    | ReEnter
    | EndEpisode
    | WithdrawConsent
    | GiveConsent
    | RescheduleDeadline
    | CancelHandoff
    | RecordCompletionReport
    | RecordSignpostCheck
    | LogActivity
    | CorrectActivity
    | DeleteActivity
)


class PartnerFact(Message):
    event_id: Id
    handoff_id: Id
    provider_id: Id
    occurred_at: datetime


class ProviderResponded(PartnerFact):
    decision: ProviderDecision
    reason_code: Code | None = None
    waitlist_band: Literal["under_1_month", "1_to_3_months", "over_3_months"] | None = None
    # A completion says what was delivered (a code) and, optionally, how many sessions.
    delivered_code: Code | None = None
    sessions_delivered: int | None = Field(default=None, ge=0, le=1000)


class AttendanceRecorded(PartnerFact):
    session_date: date
    status: Literal["attended", "did_not_attend", "cancelled_by_person", "cancelled_by_provider"]
