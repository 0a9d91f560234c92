"""The state one referral's workflow carries: one small serialisable object.

Everything here is bounded: dedupe sets and session logs are capped, and earlier
episodes are kept as summaries (their full history lives in the read model), so the
object stays small across years and continue-as-new.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from events.completion import CompletionReported
from events.referral import Stage
from pathway.config import PathwayConfig, shared
from pathway.versions import STATE_VERSION, upcast_state

MAX_SEEN_REQUESTS = 256
MAX_SEEN_EVENTS = 2048
MAX_PAST_EPISODES = 50
MAX_RECENT_SESSIONS = 20
MAX_EVIDENCE_IDS = 20
# Activities that can still be corrected or deleted: the most recent, case-wide. Older
# ones stay in the read model and the events, and are corrected there by an operator.
MAX_ACTIVITIES = 500

ACTIVE_HANDOFF = ("requested", "accepted", "in-progress", "on-hold")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Measurement(Model):
    measurement_id: str
    instrument: str
    version: str
    raw: dict[str, float]
    derived: dict[str, str | float]
    administered_at: datetime
    administered_by: str
    consent_ref: str
    event_id: str


class Handoff(Model):
    handoff_id: str
    provider_id: str
    service_id: str
    status: str = "requested"
    reason_code: str | None = None
    waitlist_band: str | None = None
    requested_at: datetime
    attended: int = 0
    delivered_code: str | None = None
    sessions_delivered: int | None = None


class Goal(Model):
    number: int
    category: str
    words_note_id: str | None = None
    target_date: date | None = None
    status: str = "not_started"
    at_review: str | None = None
    at_followup: str | None = None


class Session(Model):
    session_date: date
    status: str
    handoff_id: str


class Episode(Model):
    number: int
    stage: Stage = "triage"
    opened_at: datetime
    source: str
    referrer_org_id: str
    reason_codes: list[str] = Field(default_factory=list)
    link_worker_id: str | None = None
    contact_attempts: int = 0
    support_level: str | None = None
    baseline: dict[str, Measurement] = Field(default_factory=dict)
    midpoint_measures: dict[str, Measurement] = Field(default_factory=dict)
    review_measures: dict[str, Measurement] = Field(default_factory=dict)
    followup_measures: dict[str, Measurement] = Field(default_factory=dict)
    plan_version: int = 0
    goal_count: int = 0
    goals: list[Goal] = Field(default_factory=list)
    # "signposting": a level 1 short path (information and signposting, no handoffs, a
    # signpost check instead of the review); "full": the whole pathway.
    path: Literal["full", "signposting"] = "full"
    first_plan_at: datetime | None = None
    handoffs: dict[str, Handoff] = Field(default_factory=dict)
    attended_sessions: int = 0
    recent_sessions: list[Session] = Field(default_factory=list)
    disengaged: bool = False
    # Deadlines still to come, as absolute times (they survive continue-as-new), and the
    # ones that passed: actions due from the link worker until the action is recorded.
    deadlines: dict[str, datetime] = Field(default_factory=dict)
    overdue: list[str] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list)
    evidence: dict[str, list[str]] = Field(default_factory=dict)
    review_decision: str | None = None
    dormant_reason: str | None = None
    ended_at: datetime | None = None
    # purposes consented to at the assessment beyond provider sharing, None if not asked
    consent_purposes: list[str] | None = None
    completion_report: CompletionReported | None = None
    own_words_note_id: str | None = None


class EpisodeSummary(Model):
    number: int
    opened_at: datetime
    ended_at: datetime | None
    source: str
    final_stage: Stage
    dormant_reason: str | None
    support_level: str | None
    attended_sessions: int
    outcomes: list[str]
    path: Literal["full", "signposting"] = "full"


class CaseState(Model):
    # The shape's version (``pathway.versions``), not the case's: that is ``version``.
    schema_version: int = STATE_VERSION
    referral_id: str
    partner_id: str
    locality: str
    config: PathwayConfig
    consent_to_share: bool
    version: int = 0
    episode: Episode
    past_episodes: list[EpisodeSummary] = Field(default_factory=list)
    seen_requests: dict[str, int] = Field(default_factory=dict)
    seen_events: list[str] = Field(default_factory=list)
    # Logged activities that can still be corrected or deleted: id -> episode number.
    activities: dict[str, int] = Field(default_factory=dict)

    @field_validator("config", mode="after")
    @classmethod
    def _shared_config(cls, config: PathwayConfig) -> PathwayConfig:
        return shared(config)  # decoded per referral, held once per worker

    @model_validator(mode="before")
    @classmethod
    def _upcast_stored(cls, data: Any, info: ValidationInfo) -> Any:
        # Only stored JSON (a continue-as-new input Temporal hands back, a fixture) can be
        # of an earlier version; a state built in code is current by construction.
        if info.mode == "json" and isinstance(data, dict):
            return upcast_state(data)
        return data

    def summary(self) -> EpisodeSummary:
        ep = self.episode
        return EpisodeSummary(
            number=ep.number,
            opened_at=ep.opened_at,
            ended_at=ep.ended_at,
            source=ep.source,
            final_stage=ep.stage,
            dormant_reason=ep.dormant_reason,
            support_level=ep.support_level,
            attended_sessions=ep.attended_sessions,
            outcomes=list(ep.outcomes),
            path=ep.path,
        )


def remember_request(state: CaseState, request_id: str) -> None:
    state.seen_requests[request_id] = state.version
    while len(state.seen_requests) > MAX_SEEN_REQUESTS:
        del state.seen_requests[next(iter(state.seen_requests))]


def remember_activity(state: CaseState, activity_id: str) -> None:
    state.activities[activity_id] = state.episode.number
    while len(state.activities) > MAX_ACTIVITIES:
        del state.activities[next(iter(state.activities))]


def remember_event(state: CaseState, event_id: str) -> None:
    state.seen_events.append(event_id)
    if len(state.seen_events) > MAX_SEEN_EVENTS:
        del state.seen_events[: len(state.seen_events) - MAX_SEEN_EVENTS]


def add_evidence(episode: Episode, kind: str, event_id: str) -> None:
    ids = episode.evidence.setdefault(kind, [])
    if len(ids) < MAX_EVIDENCE_IDS:
        ids.append(event_id)


def clear(episode: Episode, name: str) -> None:
    """The action a deadline asked for happened: forget it, whether or not it passed."""
    episode.deadlines.pop(name, None)
    if name in episode.overdue:
        episode.overdue.remove(name)


def is_open(episode: Episode, name: str) -> bool:
    return name in episode.deadlines or name in episode.overdue
