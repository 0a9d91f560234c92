"""The reporting read models: one table per kind of fact the KPIs count, written only by
the reporting consumer (``reporting.project``) and rebuilt from the topics.

Every row is keyed by what the fact is about (a referral, an episode, a handoff and
session date, a claim), never by when it arrived, and each column is set the same way
whatever order the topics are read in (the earliest time wins, a later status replaces an
earlier one only within one topic's key order), so a rebuild gives the same rows.
Pseudonymous ids and codes only: nothing here is personal data.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class ReportReferral(SQLModel, table=True):
    """One row per referral received: a new case, a re-entry or one that joined an episode."""

    __tablename__ = "reporting_referrals"

    # The KPIs' filters (reporting.kpis.View) are WHERE clauses on these columns.
    event_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64, index=True)
    episode: int
    kind: str = Field(max_length=16)  # received | reentered | joined
    partner_id: str = Field(max_length=64, index=True)
    locality: str = Field(max_length=64, index=True)
    source: str = Field(max_length=64, index=True)
    referrer_org_id: str = Field(max_length=64, index=True)
    received_at: datetime = Field(index=True)
    month: str = Field(max_length=7, index=True)  # YYYY-MM in the reporting time zone


class ReportEpisode(SQLModel, table=True):
    """One row per episode: where it started and when it reached each step of the funnel."""

    __tablename__ = "reporting_episodes"

    referral_id: str = Field(primary_key=True, max_length=64)
    episode: int = Field(primary_key=True)
    partner_id: str = Field(max_length=64, index=True)
    locality: str = Field(max_length=64, index=True)
    source: str | None = Field(default=None, max_length=64, index=True)
    referrer_org_id: str | None = Field(default=None, max_length=64, index=True)
    reentry: bool = False
    received_at: datetime | None = Field(default=None, index=True)
    month: str | None = Field(default=None, max_length=7, index=True)
    accepted_at: datetime | None = None
    first_contact_due: datetime | None = None
    declined_at: datetime | None = None
    decline_reason: str | None = Field(default=None, max_length=64)
    first_contact_at: datetime | None = None
    unable_to_contact_at: datetime | None = None
    assessed_at: datetime | None = None
    support_level: str | None = Field(default=None, max_length=16, index=True)
    baseline_count: int = 0
    plan_at: datetime | None = None
    review_due: datetime | None = None
    followup_due: datetime | None = None
    reviewed_at: datetime | None = None
    review_measure_count: int = 0
    followup_at: datetime | None = None
    followup_measure_count: int = 0
    dormant_at: datetime | None = None
    dormant_reason: str | None = Field(default=None, max_length=32)
    # The person's consent to evaluation (docs/reporting.md, "Consent to evaluation"):
    # True given, False refused, None never asked. Every statement of it must say given
    # (an assessment's, each outcome's), so the order events arrive in does not matter.
    evaluation_consent: bool | None = None
    # The link worker assigned now (the latest ``referral.link_worker_assigned``; the
    # referral's events are in order on its partition). None: never assigned.
    link_worker_id: str | None = Field(default=None, max_length=64)


class ReportHandoff(SQLModel, table=True):
    """One row per handoff: requested by a plan, then each provider answer it received."""

    __tablename__ = "reporting_handoffs"
    # A fact's episode is looked up by (referral, episode) in every KPI.
    __table_args__ = (Index("ix_reporting_handoffs_episode", "referral_id", "episode"),)

    handoff_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64, index=True)
    episode: int
    provider_id: str = Field(max_length=64)
    service_id: str | None = Field(default=None, max_length=64)
    requested_at: datetime | None = None
    status: str = Field(default="requested", max_length=16)
    accepted: bool = False
    rejected_reason: str | None = Field(default=None, max_length=64)
    waitlist_band: str | None = Field(default=None, max_length=32)
    started: bool = False  # in progress or completed: the person went at least once
    failed_reason: str | None = Field(default=None, max_length=64)
    response_overdue: bool = False  # the provider-response deadline passed unanswered


class ReportSession(SQLModel, table=True):
    """One row per handoff and session date: the latest attendance report for it (a later
    report for the same session is a correction and replaces it)."""

    __tablename__ = "reporting_sessions"
    # A fact's episode is looked up by (referral, episode) in every KPI.
    __table_args__ = (Index("ix_reporting_sessions_episode", "referral_id", "episode"),)

    handoff_id: str = Field(primary_key=True, max_length=64)
    session_date: date = Field(primary_key=True)
    referral_id: str = Field(max_length=64, index=True)
    episode: int
    provider_id: str = Field(max_length=64)
    status: str = Field(max_length=32)
    reports: int = 1  # how many reports this session had (more than one: corrected)


class ReportMeasure(SQLModel, table=True):
    """One instrument at one time point of an episode: baseline, review or follow-up."""

    __tablename__ = "reporting_measures"

    referral_id: str = Field(primary_key=True, max_length=64)
    episode: int = Field(primary_key=True)
    instrument: str = Field(primary_key=True, max_length=32)
    timepoint: str = Field(primary_key=True, max_length=16)  # baseline | review | followup
    version: str = Field(max_length=16)
    raw: str  # JSON, as the event carried it
    derived: str  # JSON
    administered_at: datetime


class ReportAction(SQLModel, table=True):
    """One row per action that fell due (a deadline passed before the work was done)."""

    __tablename__ = "reporting_actions"
    # A fact's episode is looked up by (referral, episode) in every KPI.
    __table_args__ = (Index("ix_reporting_actions_episode", "referral_id", "episode"),)

    event_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64, index=True)
    episode: int
    action: str = Field(max_length=32)
    handoff_id: str | None = Field(default=None, max_length=64)
    due_at: datetime
    month: str = Field(max_length=7)


class ReportOutcome(SQLModel, table=True):
    """One row per outcome fact stated for an episode (each is stated at most once)."""

    __tablename__ = "reporting_outcomes"

    referral_id: str = Field(primary_key=True, max_length=64)
    episode: int = Field(primary_key=True)
    outcome: str = Field(primary_key=True, max_length=32)  # engagement | connection | ...
    partner_id: str = Field(max_length=64)
    occurred_at: datetime
    month: str = Field(max_length=7)


class ReportClaim(SQLModel, table=True):
    """One row per payment claim: its latest status and amount."""

    __tablename__ = "reporting_claims"
    # A fact's episode is looked up by (referral, episode) in every KPI.
    __table_args__ = (Index("ix_reporting_claims_episode", "referral_id", "episode"),)

    claim_id: str = Field(primary_key=True, max_length=64)
    contract_id: str = Field(max_length=64, index=True)
    referral_id: str = Field(max_length=64)
    episode: int
    metric: str = Field(max_length=32)
    partner_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    amount_pence: int
    first_at: datetime  # when the claim was made: its month is the claim's month
    month: str = Field(max_length=7)
    last_at: datetime


class ReportDeadLetter(SQLModel, table=True):
    """One row per dead-lettered message, keyed by where the original was."""

    __tablename__ = "reporting_dead_letters"

    topic: str = Field(primary_key=True, max_length=120)
    partition: int = Field(primary_key=True)
    offset: int = Field(primary_key=True)
    consumer: str = Field(primary_key=True, max_length=64)
    partner_id: str = Field(max_length=64)  # the provider it came from, or "unknown"
    reason: str = Field(max_length=32)  # the reason's category (messaging.consumer)
    at: datetime
    month: str = Field(max_length=7)


SUMMED = ("referral_id", "episode", "deleted", "direct", "minutes", "started_at")


class ReportActivity(SQLModel, table=True):
    """One row per logged link worker activity, as its latest fact says: logged, then each
    correction (every field again, the latest by time counts); a deletion marks it
    deleted for good (a tombstone, so that the order topics are read in cannot bring it
    back) and the KPIs leave it out."""

    __tablename__ = "reporting_activities"
    __table_args__ = (
        Index("ix_reporting_activities_episode", "referral_id", "episode"),
        # The activity KPIs read these alone (reporting.kpis.casework): rows already in
        # the order they are grouped and counted in, with every column they add up.
        Index("ix_reporting_activities_partner", "partner_id", "referral_id", "episode", "deleted"),
        Index("ix_reporting_activities_worker", "partner_id", "link_worker_id", *SUMMED),
        Index("ix_reporting_activities_type", "partner_id", "activity_type", *SUMMED),
    )

    activity_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64)
    episode: int
    partner_id: str = Field(max_length=64)
    locality: str = Field(max_length=64)
    link_worker_id: str = Field(max_length=64)
    activity_type: str = Field(max_length=16)
    direct: bool
    started_at: datetime
    minutes: int
    deleted: bool = False
    corrections: int = 0  # how many corrections it had
    stated_at: datetime  # when the fact counted now was recorded (the latest wins)


class ReportDistal(SQLModel, table=True):
    """One row per episode and distal measure: the counts before and after the referral
    (``linkway.outcome.distal_change.v1``, stated once; a restatement keeps the first)."""

    __tablename__ = "reporting_distal"

    referral_id: str = Field(primary_key=True, max_length=64)
    episode: int = Field(primary_key=True)
    measure: str = Field(primary_key=True, max_length=32)
    partner_id: str = Field(max_length=64)
    window_months: int
    before_count: int
    after_count: int
    occurred_at: datetime
    month: str = Field(max_length=7)


TABLES = (
    ReportReferral,
    ReportEpisode,
    ReportHandoff,
    ReportSession,
    ReportMeasure,
    ReportAction,
    ReportOutcome,
    ReportClaim,
    ReportDeadLetter,
    ReportActivity,
    ReportDistal,
)
TABLE_NAMES = tuple(str(t.__tablename__) for t in TABLES)
