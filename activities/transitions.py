"""Persisting a referral's transitions: the read model and the outbox, in one transaction.

The activity is idempotent: a retry after a commit inserts no event twice (outbox rows
are unique by event id) and never moves the read model backwards (rows carry the
state version and only a newer one overwrites).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import sql
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio import activity

from activities.readmodel import (
    EpisodeRow,
    HandoffRow,
    MeasurementRow,
    ReferralRow,
    apply_activity,
    measurement_rows,
)
from events.envelope import CloudEvent, new_event
from infra.db import transaction
from messaging import outbox
from messaging.outbox import OutboxRow
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
        view = input.view
        envelopes = [
            (
                new_event(
                    e.type,
                    view.referral_id,
                    e.data,
                    self.source,
                    event_id=e.event_id,
                    time=e.occurred_at,
                ),
                e.topic,
            )
            for e in input.events
        ]
        measures = [
            row for e in input.events for row in measurement_rows(view.referral_id, e.type, e.data)
        ]
        with transaction(self.engine) as session:
            # Every read before any write. On SQLite a transaction takes the database's
            # one write lock at its first write and keeps it to the commit; with the
            # session's autoflush, each read after the referral's row changed wrote
            # first, so the lock was held while this activity queried and built its
            # rows, and every other writer (the other referrals' activities, the relay
            # marking what it published) slept in SQLite's busy handler meanwhile
            # (docs/benchmarks.md, P1). Now the writes go out together at the end.
            # None of these reads looks for a row this batch adds: episodes, handoffs,
            # event ids and measurement ids are each distinct within one batch.
            # Each kind of row is read in one statement, not one per row, since a round
            # trip is what the activity pays for: three reads for a known referral (it
            # with its episodes, its handoffs, the event and measurement ids stored).
            with session.no_autoflush:
                if _upsert_referral(session, view, input.episodes):
                    _upsert_handoffs(session, view)
                events, measured = _stored(session, envelopes, measures)
                new = [
                    (envelope, topic) for envelope, topic in envelopes if envelope.id not in events
                ]
                session.add_all(m for m in measures if m.measurement_id not in measured)
                # The reads are done: the first write (and SQLite's lock) from here on.
                outbox.stage_all(session, new, outbox.trace_headers())
            # Logged activities last, with the autoflush: one batch may log an activity
            # and correct it, and the correction must find the row the log just added.
            for e in input.events:
                apply_activity(session, e.event_id, e.type, e.data)
        return RecordTransitionResult(events_written=len(new))


def _stored(
    session: Session, envelopes: list[tuple[CloudEvent, str]], measures: list[MeasurementRow]
) -> tuple[set[str], set[str]]:
    """Which of the batch's event ids are in the outbox and which of its measurement ids
    in the measurements, in one statement: a retry after a commit adds neither again."""
    event_ids = [envelope.id for envelope, _ in envelopes]
    measurement_ids = [m.measurement_id for m in measures]
    parts = []
    if event_ids:
        parts.append(
            sql.select(sql.literal("event"), col(OutboxRow.event_id)).where(
                col(OutboxRow.event_id).in_(event_ids)
            )
        )
    if measurement_ids:
        parts.append(
            sql.select(sql.literal("measurement"), col(MeasurementRow.measurement_id)).where(
                col(MeasurementRow.measurement_id).in_(measurement_ids)
            )
        )
    if not parts:
        return set(), set()
    found = session.execute(parts[0] if len(parts) == 1 else sql.union_all(*parts)).all()
    return (
        {i for kind, i in found if kind == "event"},
        {i for kind, i in found if kind == "measurement"},
    )


def _upsert_referral(session: Session, view: ReferralView, episodes: list[EpisodeSummary]) -> bool:
    """Write the view and its episodes unless the row already holds this version or a
    newer one. The referral's row and its episodes' rows come in one statement."""
    numbers = [summary.number for summary in episodes]
    found = session.execute(
        sql.select(ReferralRow, EpisodeRow)
        .outerjoin(
            EpisodeRow,
            sql.and_(
                col(EpisodeRow.referral_id) == col(ReferralRow.referral_id),
                col(EpisodeRow.number).in_(numbers),
            ),
        )
        .where(col(ReferralRow.referral_id) == view.referral_id)
    ).all()
    row = found[0][0] if found else None
    if row is not None and row.version >= view.version:
        return False
    values = ReferralRow.from_view(view)
    if row is None:
        session.add(values)
        # A referral's episodes are written with it, so a new referral has none; read
        # them all the same rather than trust that to the last row.
        stored = session.exec(
            select(EpisodeRow).where(
                col(EpisodeRow.referral_id) == view.referral_id,
                col(EpisodeRow.number).in_(numbers),
            )
        ).all()
    else:
        for field, value in values.model_dump(exclude={"referral_id"}).items():
            setattr(row, field, value)
        stored = [episode for _, episode in found if episode is not None]
    by_number = {episode.number: episode for episode in stored}
    for summary in episodes:
        _upsert_episode(session, by_number.get(summary.number), view.referral_id, summary)
    return True


def _upsert_handoffs(session: Session, view: ReferralView) -> None:
    if not view.handoffs:
        return
    ids = [handoff.handoff_id for handoff in view.handoffs]
    stored = session.exec(select(HandoffRow).where(col(HandoffRow.handoff_id).in_(ids))).all()
    by_id = {row.handoff_id: row for row in stored}
    for handoff in view.handoffs:
        _upsert_handoff(session, by_id.get(handoff.handoff_id), view, handoff)


def _upsert_handoff(
    session: Session, row: HandoffRow | None, view: ReferralView, handoff: Handoff
) -> None:
    values = HandoffRow(
        referral_id=view.referral_id,
        episode=view.episode,
        updated_at=datetime.now(UTC),
        **handoff.model_dump(),
    )
    if row is None:
        session.add(values)
        return
    changed = values.model_dump(exclude={"handoff_id", "episode", "updated_at"})
    if all(getattr(row, field) == value for field, value in changed.items()):
        return  # the same handoff written again with the referral: not an update of it
    for field, value in values.model_dump(exclude={"handoff_id", "episode"}).items():
        setattr(row, field, value)


def _upsert_episode(
    session: Session, row: EpisodeRow | None, referral_id: str, summary: EpisodeSummary
) -> None:
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
