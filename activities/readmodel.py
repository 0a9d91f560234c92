"""The read model: one row per referral and one per episode, written by the pathway's
activity in the same transaction as the outbox rows. Caseloads are served from here."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from pathway.views import ReferralView


class ReferralRow(SQLModel, table=True):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_caseload", "partner_id", "stage", "next_due_at"),
        Index("ix_referrals_worker", "link_worker_id", "next_due_at"),
    )

    referral_id: str = Field(primary_key=True, max_length=64)
    partner_id: str = Field(max_length=64)
    locality: str = Field(max_length=64, index=True)
    version: int
    episode: int
    stage: str = Field(max_length=32)
    link_worker_id: str | None = Field(default=None, max_length=64)
    support_level: str | None = None
    consent_to_share: bool
    opened_at: datetime
    next_due_at: datetime | None = None
    next_due_action: str | None = None
    deadlines: str = "{}"
    overdue: str = "[]"
    attended_sessions: int = 0
    outcomes: str = "[]"
    handoffs: str = "[]"

    @classmethod
    def from_view(cls, view: ReferralView) -> ReferralRow:
        return cls(
            **view.model_dump(exclude={"deadlines", "overdue", "outcomes", "handoffs"}),
            deadlines=json.dumps({k: v.isoformat() for k, v in view.deadlines.items()}),
            overdue=json.dumps(view.overdue),
            outcomes=json.dumps(view.outcomes),
            handoffs=json.dumps([h.model_dump(mode="json") for h in view.handoffs]),
        )


class EpisodeRow(SQLModel, table=True):
    __tablename__ = "referral_episodes"

    referral_id: str = Field(primary_key=True, max_length=64)
    number: int = Field(primary_key=True)
    stage: str = Field(max_length=32)
    opened_at: datetime
    ended_at: datetime | None = None
    source: str = Field(max_length=64)
    dormant_reason: str | None = None
    support_level: str | None = None
    attended_sessions: int = 0
    outcomes: str = "[]"


class HandoffRow(SQLModel, table=True):
    """One row per provider handoff: how an inbound provider event finds its referral, and
    how a provider's handoff list is served."""

    __tablename__ = "handoffs"
    __table_args__ = (Index("ix_handoffs_provider", "provider_id", "status"),)

    handoff_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64, index=True)
    episode: int
    provider_id: str = Field(max_length=64)
    service_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    reason_code: str | None = None
    waitlist_band: str | None = None
    requested_at: datetime
    attended: int = 0


class ReferrerLink(SQLModel, table=True):
    """Which referring partners made a referral (or a later referral that re-entered the
    same case): a referrer sees only these. Written by the API when the referral is made,
    never by the pathway's activity, so a newer view cannot overwrite it."""

    __tablename__ = "referral_referrers"

    referral_id: str = Field(primary_key=True, max_length=64)
    partner_id: str = Field(primary_key=True, max_length=64, index=True)
    linked_at: datetime
