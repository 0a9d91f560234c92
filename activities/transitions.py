"""Persisting a referral's transitions: the read model and the outbox, in one transaction.

The activity is idempotent: a retry after a commit inserts no event twice (outbox rows
are unique by event id) and never moves the read model backwards (rows carry the
state version and only a newer one overwrites).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from activities.readmodel import (
    EpisodeRow,
    HandoffRow,
    ReferralRow,
    add_measurements,
    apply_activity,
    measurement_rows,
)
from events.envelope import new_event
from infra.db import transaction
from messaging import outbox
from pathway.state import EpisodeSummary, Handoff
from pathway.views import ReferralView
from workflows import RECORD_TRANSITION
from workflows.models import RecordTransitionInput, RecordTransitionResult


class TransitionActivities:
    def __init__(self, engine: Engine, event_source: str) -> None:
        self.engine = engine
        self.source = event_source

    @activity.defn(name=RECORD_TRANSITION)
    async def record_transition(self, input: RecordTransitionInput) -> RecordTransitionResult:
        # SQLite and psycopg are blocking: keep the event loop free for other activities.
        import asyncio

        return await asyncio.to_thread(self._record, input)

    def _record(self, input: RecordTransitionInput) -> RecordTransitionResult:
        written = 0
        with transaction(self.engine) as session:
            # Every read before any write. On SQLite a transaction takes the database's
            # one write lock at its first write and keeps it to the commit; with the
            # session's autoflush, each read after the referral's row changed wrote
            # first, so the lock was held while this activity queried and built its
            # rows, and every other writer (the other referrals' activities, the relay
            # marking what it published) slept in SQLite's busy handler meanwhile
            # (docs/benchmarks.md, P1). Now the writes go out together at the commit.
            # None of these reads looks for a row this batch adds: episodes, handoffs,
            # event ids and measurement ids are each distinct within one batch.
            with session.no_autoflush:
                if _upsert_referral(session, input.view):
                    for summary in input.episodes:
                        _upsert_episode(session, input.view.referral_id, summary)
                    for handoff in input.view.handoffs:
                        _upsert_handoff(session, input.view, handoff)
                for e in input.events:
                    envelope = new_event(
                        e.type,
                        input.view.referral_id,
                        e.data,
                        self.source,
                        event_id=e.event_id,
                        time=e.occurred_at,
                    )
                    written += outbox.add(session, envelope, e.topic)
                    rows = measurement_rows(input.view.referral_id, e.type, e.data)
                    add_measurements(session, rows)
            # Logged activities last, with the autoflush: one batch may log an activity
            # and correct it, and the correction must find the row the log just added.
            for e in input.events:
                apply_activity(session, e.event_id, e.type, e.data)
        return RecordTransitionResult(events_written=written)


def _upsert_referral(session: Session, view: ReferralView) -> bool:
    """Write the view unless the row already holds this version or a newer one."""
    row = session.get(ReferralRow, view.referral_id)
    if row is not None and row.version >= view.version:
        return False
    values = ReferralRow.from_view(view)
    if row is None:
        session.add(values)
        return True
    for field, value in values.model_dump(exclude={"referral_id"}).items():
        setattr(row, field, value)
    return True


def _upsert_handoff(session: Session, view: ReferralView, handoff: Handoff) -> None:
    values = HandoffRow(
        referral_id=view.referral_id,
        episode=view.episode,
        updated_at=datetime.now(UTC),
        **handoff.model_dump(),
    )
    row = session.get(HandoffRow, handoff.handoff_id)
    if row is None:
        session.add(values)
        return
    changed = values.model_dump(exclude={"handoff_id", "episode", "updated_at"})
    if all(getattr(row, field) == value for field, value in changed.items()):
        return  # the same handoff written again with the referral: not an update of it
    for field, value in values.model_dump(exclude={"handoff_id", "episode"}).items():
        setattr(row, field, value)


def _upsert_episode(session: Session, referral_id: str, summary: EpisodeSummary) -> None:
    row = session.get(EpisodeRow, (referral_id, summary.number))
    values = EpisodeRow(
        referral_id=referral_id,
        number=summary.number,
        stage=summary.final_stage,
        opened_at=summary.opened_at,
        ended_at=summary.ended_at,
        source=summary.source,
        dormant_reason=summary.dormant_reason,
        support_level=summary.support_level,
        attended_sessions=summary.attended_sessions,
        outcomes=json.dumps(summary.outcomes),
        path=summary.path,
    )
    if row is None:
        session.add(values)
        return
    for field, value in values.model_dump(exclude={"referral_id", "number"}).items():
        setattr(row, field, value)
