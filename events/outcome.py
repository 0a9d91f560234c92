"""Outcome facts (topic ``linkway.outcomes``) for the outcomes-contract payment engine.

The pathway states facts with their evidence; whether a fact earns a payment is the
payment engine's decision under the rate card in force. Each fact is stated at most
once per referral episode.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from events import topics
from events.catalogue import EventData, event_type
from events.ids import Code, Id
from events.referral import ConsentPurpose, MeasureScores

__all__ = ["ConsentPurpose"]


class OutcomeEvent(EventData):
    referral_id: Id
    episode: int = Field(ge=1)
    partner_id: Id
    locality: Id
    occurred_at: datetime
    evidence_event_ids: list[str] = Field(max_length=50)
    # consent to share with providers, and a consent reference on every baseline measure
    consent_recorded: bool
    # The purposes consented to, when the assessment recorded them separately; absent
    # (null) from earlier producers, whose consumers fall back to consent_recorded.
    consent_purposes: list[ConsentPurpose] | None = Field(default=None, max_length=3)

    def consented_to(self, purpose: ConsentPurpose) -> bool:
        if self.consent_purposes is None:
            return self.consent_recorded
        return purpose in self.consent_purposes

    def kind(self) -> tuple[str, str | None]:
        """What a rate-card metric pays for: the type, and for a distal outcome its measure
        (one contract may pay M7 on GP appointments and M8 on A&E attendances)."""
        return self.TYPE, None


@event_type(
    "linkway.outcome.engagement.v1",
    topics.OUTCOMES,
    "Engagement: an assessment with at least one baseline measure and an agreed plan.",
)
class EngagementAchieved(OutcomeEvent):
    baseline: list[MeasureScores] = Field(min_length=1, max_length=20)


@event_type(
    "linkway.outcome.connection.v1",
    topics.OUTCOMES,
    "Connection: the person attended the configured number of Tier Two sessions.",
)
class ConnectionAchieved(OutcomeEvent):
    attended_sessions: int = Field(ge=1)


class MeasurePair(EventData):
    baseline: MeasureScores
    followup: MeasureScores
    improved: bool
    # On a follow-up pair, the same instrument at the 3-month review, so "sustained" can
    # mean the improvement achieved at the review is still there; null when not measured.
    review: MeasureScores | None = None


@event_type(
    "linkway.outcome.wellbeing_reviewed.v1",
    topics.OUTCOMES,
    "The 3-month review compared follow-up measures with the baseline.",
)
class WellbeingReviewed(OutcomeEvent):
    pairs: list[MeasurePair] = Field(max_length=20)


@event_type(
    "linkway.outcome.sustained_reviewed.v1",
    topics.OUTCOMES,
    "The sustained-outcome follow-up compared measures with the baseline"
    " (and carries the review's measures).",
)
class SustainedReviewed(OutcomeEvent):
    pairs: list[MeasurePair] = Field(max_length=20)


@event_type(
    "linkway.outcome.completion.v1",
    topics.OUTCOMES,
    "Completion: the episode's completion report and ongoing plan were recorded.",
)
class CompletionAchieved(OutcomeEvent):
    """Stated when the link worker first records an ended episode's completion report;
    the report itself (``linkway.referral.completion_reported.v1``) is the evidence."""

    report_version: int = Field(ge=1)
    goal_count: int = Field(ge=0)
    goals_achieved: int = Field(ge=0)
    goals_partly_achieved: int = Field(ge=0)
    ongoing_plan: list[Code] = Field(max_length=20)
    attended_sessions: int = Field(ge=0)


# Distal activity a commissioner's or ICB's data feed counts per person and month (the
# Cambridgeshire and Peterborough principles' distal outcomes; Spring's M7).
DistalMeasure = Literal[
    "gp_appointments",
    "ae_attendances",
    "non_elective_admissions",
    "out_of_hours_contacts",
    "care_packages",
]
DISTAL_MEASURES: tuple[str, ...] = DistalMeasure.__args__  # type: ignore[attr-defined]


@event_type(
    "linkway.outcome.distal_change.v1",
    topics.OUTCOMES,
    "Distal change: one measure's count over a window of whole months before the"
    " episode's referral, and over the same number of months after it.",
)
class DistalChange(OutcomeEvent):
    """Stated once per episode and measure, when the after-window has closed and the feed
    covers every month of both windows. Counts only: the feed's NHS numbers never leave
    the personal-data store's match."""

    measure: DistalMeasure
    window_months: int = Field(ge=1, le=24)
    before_from: date
    before_to: date
    after_from: date
    after_to: date
    before_count: int = Field(ge=0)
    after_count: int = Field(ge=0)

    def kind(self) -> tuple[str, str | None]:
        return self.TYPE, self.measure


# The published outcome facts, in the order the pathway reaches them: the one table the
# payment engine's consumer, rate cards and reconciliation read their types from, so a new
# outcome fact is a model above and an entry here.
OUTCOME_EVENTS: tuple[type[OutcomeEvent], ...] = (
    EngagementAchieved,
    ConnectionAchieved,
    WellbeingReviewed,
    SustainedReviewed,
    CompletionAchieved,
    DistalChange,
)
OUTCOME_TYPES: tuple[str, ...] = tuple(event.TYPE for event in OUTCOME_EVENTS)
