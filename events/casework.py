"""Casework events (topic ``linkway.referrals``): the link worker's logged time, the
plan's structured goals and the level 1 signposting check.

Pseudonymous and coded only. An activity names who did it (a pseudonymous link worker
id), its type, whether it was direct, when and for how long; its note, if any, is in
the personal-data store and the event only says that there is one. A goal is a number,
a category code, a target date and a status; what the person wants, in their words,
stays in the personal-data store.

Corrections and deletions are new facts: an activity is logged once, and each
correction repeats all its fields (the latest counts); a deletion names it and a reason.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from events import topics
from events.catalogue import EventData, event_type
from events.ids import Code, Id
from events.referral import ReferralEvent

ActivityType = Literal[
    "one_to_one", "group", "phone", "text", "email", "home_visit", "advocacy", "admin"
]
GoalStatus = Literal["not_started", "in_progress", "achieved", "partly_achieved", "dropped"]
GoalPhase = Literal["plan", "checkin", "review", "followup"]


class ActivityFacts(ReferralEvent):
    activity_id: Id
    link_worker_id: Id = Field(description="Who spent the time (pseudonymous).")
    activity_type: ActivityType
    direct: bool = Field(description="With the person (direct) or on their behalf (indirect).")
    started_at: datetime
    minutes: int = Field(ge=1, le=720)
    note_recorded: bool = Field(
        description="A note about it is in the personal-data store (never here)."
    )


@event_type(
    "linkway.referral.activity_logged.v1",
    topics.REFERRALS,
    "A link worker logged a contact or session with, or for, the person.",
)
class ActivityLogged(ActivityFacts):
    pass


@event_type(
    "linkway.referral.activity_corrected.v1",
    topics.REFERRALS,
    "A logged activity was corrected: every field as it now stands (the latest counts).",
)
class ActivityCorrected(ActivityFacts):
    pass


@event_type(
    "linkway.referral.activity_deleted.v1",
    topics.REFERRALS,
    "A logged activity was deleted (logged in error); it no longer counts.",
)
class ActivityDeleted(ReferralEvent):
    activity_id: Id
    reason_code: Code


class GoalState(EventData):
    goal: int = Field(ge=1, le=20, description="The goal's number in the plan.")
    category: Code = Field(description="A Well-being Star area or a commissioner's category.")
    target_date: date | None = None
    status: GoalStatus
    at_review: GoalStatus | None = Field(default=None, description="Attainment at the review.")
    at_followup: GoalStatus | None = Field(
        default=None, description="Attainment at the sustained-outcome follow-up."
    )
    words_recorded: bool = Field(
        description="What the person wants, in their words, is in the personal-data store."
    )


@event_type(
    "linkway.referral.goals_updated.v1",
    topics.REFERRALS,
    "The plan's goals were set (plan) or their status updated (check-in, review, follow-up).",
)
class GoalsUpdated(ReferralEvent):
    phase: GoalPhase
    plan_version: int = Field(ge=1)
    goals: list[GoalState] = Field(max_length=20)


class SignpostRef(EventData):
    service_id: Id | None = Field(
        default=None, description="A directory service, or none for something outside it."
    )
    category: Code = Field(description="What it is about, e.g. benefits_advice, walking.")


@event_type(
    "linkway.referral.signposted.v1",
    topics.REFERRALS,
    "The person was given information and signposting (level 1: instead of any handoff).",
)
class Signposted(ReferralEvent):
    plan_version: int = Field(ge=1)
    signposts: list[SignpostRef] = Field(min_length=1, max_length=20)
    check_due: datetime | None = Field(
        description="The short path's signpost check; none when signposts are part of a full plan."
    )


@event_type(
    "linkway.referral.signpost_checked.v1",
    topics.REFERRALS,
    "The follow-up check after signposting (the short path's end, instead of a review).",
)
class SignpostChecked(ReferralEvent):
    outcome: Literal["connected", "not_connected", "needs_more_support"]
    support_level: str | None = Field(
        default=None, description="needs_more_support: the level the person moves to."
    )
