"""What the referrer (a GP practice, a hospital team) may know about a referral it made,
as a pure projection of the referral's lifecycle events: accepted, or declined with the
reason (coded, with display text); first contact made; assessed; plan agreed (no
detail); reviewed; the episode ended (with the reason) or completed, with a summary
only when the person consented to sharing. Each milestone is also an item of the
message back to the GP record (``api.fhir.message_back``).

One table (``MILESTONES``) says which event makes which milestone and which SNOMED CT
concept codes it, where the UK codes one; docs/fhir.md lists the same table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ReferrerStatus = Literal[
    "received",
    "accepted",
    "declined",
    "first_contact",
    "assessed",
    "plan_agreed",
    "reviewed",
    "ended",
    "completed",
]

# SNOMED CT (UK edition) concepts NHS England asks social prescribing to be coded with.
SNOMED = "http://snomed.info/sct"
REFERRAL_TO_SOCIAL_PRESCRIBING = ("871731000000106", "Referral to social prescribing service")
SOCIAL_PRESCRIBING_DECLINED = ("871711000000103", "Social prescribing declined")


@dataclass(frozen=True)
class MilestoneSpec:
    status: ReferrerStatus
    display: str
    snomed: tuple[str, str] | None = None


# Event type -> the milestone it makes. Only the first of each milestone in an episode
# counts (a revised plan is not a second "plan agreed" for the referrer).
MILESTONES: dict[str, MilestoneSpec] = {
    "linkway.referral.received.v1": MilestoneSpec("received", "Referral received"),
    "linkway.referral.reentered.v1": MilestoneSpec("received", "Referral received"),
    "linkway.referral.accepted.v1": MilestoneSpec(
        "accepted",
        "Referral accepted by the social prescribing service",
        REFERRAL_TO_SOCIAL_PRESCRIBING,
    ),
    "linkway.referral.declined.v1": MilestoneSpec(
        "declined", "Referral declined", SOCIAL_PRESCRIBING_DECLINED
    ),
    "linkway.referral.contact_attempted.v1": MilestoneSpec(
        "first_contact", "First contact made with the person"
    ),
    "linkway.referral.assessed.v1": MilestoneSpec("assessed", "Assessment completed"),
    "linkway.referral.plan_agreed.v1": MilestoneSpec("plan_agreed", "Personal plan agreed"),
    "linkway.referral.reviewed.v1": MilestoneSpec("reviewed", "Support reviewed"),
    "linkway.referral.dormant.v1": MilestoneSpec("ended", "Episode ended"),
    "linkway.referral.completion_reported.v1": MilestoneSpec(
        "completed", "Social prescribing completed"
    ),
}

# Display text for the reason codes a referrer is shown. A code not listed here is shown
# as itself in words: codes are a commissioner's list and may grow.
REASONS: dict[str, str] = {
    # why triage declined
    "out_of_area": "The person lives outside the area the service covers",
    "not_eligible": "The referral does not meet the service's criteria",
    "needs_clinical_service": "The person needs a clinical or statutory service instead",
    "already_supported": "The person is already supported by another service",
    "person_declined": "The person declined social prescribing",
    "duplicate": "A referral for the person is already open",
    "insufficient_information": "Not enough information to triage the referral",
    # why an episode ended
    "declined": "Declined at triage",
    "unable_to_contact": "The person could not be contacted",
    "review_complete": "Support completed at review",
    "disengaged": "The person stopped taking part",
    "withdrawn": "The person chose to stop",
}


def reason_display(code: str) -> str:
    return REASONS.get(code) or code.replace("_", " ").replace("-", " ").capitalize()


@dataclass(frozen=True)
class Reason:
    code: str
    display: str


@dataclass(frozen=True)
class Milestone:
    status: ReferrerStatus
    display: str
    at: datetime
    reason: Reason | None = None
    snomed: tuple[str, str] | None = None


@dataclass(frozen=True)
class Summary:
    """An ended episode's outcome in numbers and codes, shown only with consent."""

    goals_achieved: int
    goal_count: int
    sessions_attended: int
    improved_instruments: list[str]
    ongoing_plan: list[str]


@dataclass
class ReferrerView:
    status: ReferrerStatus = "received"
    reason: Reason | None = None
    milestones: list[Milestone] = field(default_factory=list)
    summary: Summary | None = None


def project(
    events: Iterable[tuple[str, Mapping[str, Any]]], episode: int, consent_to_share: bool
) -> ReferrerView:
    """The referrer's view of one episode from its lifecycle events, oldest first, given
    as (event type, data). Events of other episodes, and any the referrer may not know
    of (handoffs, measures, notes), are ignored."""
    view = ReferrerView()
    seen: set[ReferrerStatus] = set()
    for event_type, data in events:
        spec = MILESTONES.get(event_type)
        if spec is None or data.get("episode") != episode:
            continue
        if spec.status == "completed" and data.get("status", "final") != "final":
            continue  # a draft report is the link worker's, not yet the referrer's
        if spec.status in seen:
            if spec.status == "completed" and consent_to_share:
                view.summary = _summary(data)  # the report recorded again: the latest counts
            continue
        if event_type.endswith("contact_attempted.v1") and data.get("outcome") != "contacted":
            continue
        reason = _reason(data)
        if spec.status == "ended" and "declined" in seen:
            continue  # the decline already said why (the dormant event repeats "declined")
        seen.add(spec.status)
        at = data["occurred_at"]
        view.milestones.append(
            Milestone(
                status=spec.status,
                display=spec.display,
                at=datetime.fromisoformat(at) if isinstance(at, str) else at,
                reason=reason,
                snomed=spec.snomed,
            )
        )
        view.status = spec.status
        if reason is not None:
            view.reason = reason
        if spec.status == "completed" and consent_to_share:
            view.summary = _summary(data)
    return view


def _reason(data: Mapping[str, Any]) -> Reason | None:
    code = data.get("reason_code")
    return Reason(code, reason_display(code)) if isinstance(code, str) and code else None


def _summary(data: Mapping[str, Any]) -> Summary:
    return Summary(
        goals_achieved=sum(1 for g in data.get("goals", []) if g.get("achieved") == "achieved"),
        goal_count=int(data.get("goal_count", 0)),
        sessions_attended=int(data.get("attended_sessions", 0)),
        improved_instruments=sorted(
            m["instrument"]
            for m in data.get("measures", [])
            if m.get("improved_at_followup") or m.get("improved_at_review")
        ),
        ongoing_plan=list(data.get("ongoing_plan", [])),
    )
