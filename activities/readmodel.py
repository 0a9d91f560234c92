"""The read model: one row per referral, per episode, per handoff, per measurement and per
logged activity, written by the pathway's activity (its only writer) in the same
transaction as the outbox rows. Caseloads, a referral's detail, provider handoff lists
and the time summaries are served from here."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from events.casework import ActivityCorrected, ActivityDeleted, ActivityLogged
from events.referral import (
    CheckinRecorded,
    FollowupRecorded,
    MeasureScores,
    ReferralAssessed,
    ReferralReviewed,
)
from infra.db import transaction
from messaging.outbox import OutboxRow
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
    path: str = Field(default="full", max_length=16, sa_column_kwargs={"server_default": "full"})
    goals: str = Field(default="[]", sa_column_kwargs={"server_default": "[]"})

    @classmethod
    def from_view(cls, view: ReferralView) -> ReferralRow:
        return cls(
            **view.model_dump(exclude={"deadlines", "overdue", "outcomes", "handoffs", "goals"}),
            deadlines=json.dumps({k: v.isoformat() for k, v in view.deadlines.items()}),
            overdue=json.dumps(view.overdue),
            outcomes=json.dumps(view.outcomes),
            handoffs=json.dumps([h.model_dump(mode="json") for h in view.handoffs]),
            goals=json.dumps([g.model_dump(mode="json") for g in view.goals]),
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
    # "signposting": a level 1 short path; "full": the whole pathway (reporting counts them apart).
    path: str = Field(default="full", max_length=16, sa_column_kwargs={"server_default": "full"})


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
    # What the provider delivered, once it reported the handoff completed.
    delivered_code: str | None = Field(default=None, max_length=64)
    sessions_delivered: int | None = None
    # When the row last changed (a FHIR Task's lastModified; `_lastUpdated` searches it).
    updated_at: datetime | None = None


class ReferrerLink(SQLModel, table=True):
    """Which referring partners made a referral (or a later referral that re-entered the
    same case): a referrer sees only these. Written by the API when the referral is made,
    never by the pathway's activity, so a newer view cannot overwrite it."""

    __tablename__ = "referral_referrers"

    referral_id: str = Field(primary_key=True, max_length=64)
    partner_id: str = Field(primary_key=True, max_length=64, index=True)
    linked_at: datetime


class MeasurementRow(SQLModel, table=True):
    """One row per recorded measurement (baseline, review or follow-up), written by the
    pathway's activity from the event that carries it, in the same transaction as that
    event's outbox row. The API serves a referral's measures from here."""

    __tablename__ = "referral_measurements"
    __table_args__ = (Index("ix_measurements_referral", "referral_id", "episode"),)

    measurement_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64)
    episode: int
    phase: str = Field(max_length=16)
    instrument: str = Field(max_length=64)
    version: str = Field(max_length=32)
    raw: str = "{}"
    derived: str = "{}"
    administered_at: datetime


# Which events carry measures, the field that holds them, and the phase they belong to.
MEASURES_IN: dict[str, tuple[str, str]] = {
    ReferralAssessed.TYPE: ("baseline", "baseline"),
    CheckinRecorded.TYPE: ("measures", "midpoint"),
    ReferralReviewed.TYPE: ("followup", "review"),
    FollowupRecorded.TYPE: ("measures", "followup"),
}


def measurement_rows(
    referral_id: str, event_type: str, data: dict[str, Any]
) -> list[MeasurementRow]:
    """The measurement rows an event's data holds (none for most events)."""
    if event_type not in MEASURES_IN:
        return []
    field, phase = MEASURES_IN[event_type]
    rows = []
    for item in data.get(field, []):
        scores = MeasureScores.model_validate(item)
        rows.append(
            MeasurementRow(
                measurement_id=scores.measurement_id,
                referral_id=referral_id,
                episode=data["episode"],
                phase=phase,
                instrument=scores.instrument,
                version=scores.version,
                raw=json.dumps(scores.raw),
                derived=json.dumps(scores.derived),
                administered_at=scores.administered_at,
            )
        )
    return rows


def add_measurements(session: Session, rows: list[MeasurementRow]) -> int:
    """Insert the rows not already there (a rebuild over rows that exist), looking for
    them in one statement; returns how many were new."""
    ids = {row.measurement_id for row in rows}
    if not ids:
        return 0
    there = set(
        session.exec(
            select(MeasurementRow.measurement_id).where(col(MeasurementRow.measurement_id).in_(ids))
        ).all()
    )
    added = 0
    for row in rows:
        if row.measurement_id not in there:
            there.add(row.measurement_id)
            session.add(row)
            added += 1
    return added


def rebuild_measurements(engine: Engine, chunk: int = 500) -> int:
    """Fill ``referral_measurements`` from the outbox (the archive of every event Linkway
    raised), for a database whose measures were recorded before the table existed.
    Idempotent: rows already there are kept; returns how many were added."""
    added, after = 0, 0
    while True:
        with transaction(engine) as session:
            batch = session.exec(
                select(OutboxRow)
                .where(col(OutboxRow.type).in_(MEASURES_IN), col(OutboxRow.seq) > after)
                .order_by(col(OutboxRow.seq))
                .limit(chunk)
            ).all()
            for event in batch:
                data = json.loads(event.payload)["data"]
                added += add_measurements(session, measurement_rows(event.key, event.type, data))
        if len(batch) < chunk:
            return added
        after = batch[-1].seq or after


class ActivityRow(SQLModel, table=True):
    """One row per logged activity, as its latest fact says (logged, corrected, deleted):
    the time summaries per person, link worker and partner are sums over these rows.
    Pseudonymous: a note is in the personal-data store, the row says only whether."""

    __tablename__ = "referral_activities"
    __table_args__ = (
        Index("ix_activities_referral", "referral_id", "started_at"),
        Index("ix_activities_worker", "link_worker_id", "started_at"),
        Index("ix_activities_partner", "partner_id", "started_at"),
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
    note_recorded: bool = False
    deleted: bool = False
    # The id of the latest event applied: a retried batch applies nothing twice.
    last_event_id: str = Field(max_length=64)


ACTIVITY_EVENTS = frozenset({ActivityLogged.TYPE, ActivityCorrected.TYPE, ActivityDeleted.TYPE})


def apply_activity(session: Session, event_id: str, event_type: str, data: dict[str, Any]) -> None:
    """Project one activity event onto its row. Events of one referral arrive in order
    (one workflow writes them), so the latest applied is the latest fact."""
    if event_type not in ACTIVITY_EVENTS:
        return
    row = session.get(ActivityRow, data["activity_id"])
    if event_type == ActivityDeleted.TYPE:
        if row is not None:
            row.deleted, row.last_event_id = True, event_id
        return
    facts = ActivityLogged.model_validate(data)
    values = {
        **facts.model_dump(include={"activity_id", "referral_id", "episode", "partner_id"}),
        **facts.model_dump(
            include={"locality", "link_worker_id", "activity_type", "direct", "started_at"}
        ),
        "minutes": facts.minutes,
        "note_recorded": facts.note_recorded,
        "last_event_id": event_id,
    }
    if row is None:
        session.add(ActivityRow(**values))
        return
    if row.last_event_id == event_id or row.deleted:
        return
    for field, value in values.items():
        setattr(row, field, value)
