"""What the read model keeps of a referral: a pure projection of the workflow's state.

Caseload lists are served from these rows, so they never need to query Temporal.
"""

from __future__ import annotations

from datetime import datetime

from pathway.state import CaseState, EpisodeSummary, Goal, Handoff, Model


class ReferralView(Model):
    referral_id: str
    partner_id: str
    locality: str
    version: int
    episode: int
    stage: str
    link_worker_id: str | None
    support_level: str | None
    consent_to_share: bool
    opened_at: datetime
    deadlines: dict[str, datetime]
    overdue: list[str]
    next_due_at: datetime | None
    next_due_action: str | None
    attended_sessions: int
    outcomes: list[str]
    handoffs: list[Handoff]
    path: str = "full"
    goals: list[Goal] = []


def view(state: CaseState) -> ReferralView:
    ep = state.episode
    next_due = min(ep.deadlines.items(), key=lambda kv: kv[1]) if ep.deadlines else None
    return ReferralView(
        referral_id=state.referral_id,
        partner_id=state.partner_id,
        locality=state.locality,
        version=state.version,
        episode=ep.number,
        stage=ep.stage,
        link_worker_id=ep.link_worker_id,
        support_level=ep.support_level,
        consent_to_share=state.consent_to_share,
        opened_at=ep.opened_at,
        deadlines=dict(ep.deadlines),
        overdue=list(ep.overdue),
        next_due_at=next_due[1] if next_due else None,
        next_due_action=next_due[0].partition(":")[0] if next_due else None,
        attended_sessions=ep.attended_sessions,
        outcomes=list(ep.outcomes),
        handoffs=list(ep.handoffs.values()),
        path=ep.path,
        goals=list(ep.goals),
    )


def episodes(state: CaseState) -> list[EpisodeSummary]:
    """Every episode this state still holds, oldest first, the current one last."""
    return [*state.past_episodes, state.summary()]
