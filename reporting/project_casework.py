"""Folding the link worker's activity log and the distal outcomes into the reporting read
models (``reporting.tables``: ``ReportActivity``, ``ReportDistal``). Called by
``reporting.project.fold``, in the same transaction and under the same processed-event
record as everything else it folds.

Order-free like the rest: an activity's counted fact is the one recorded latest (a
correction repeats every field; on a tie, the one read later, as one referral's events
are read in order), and a deletion is a tombstone that no logged or corrected fact read
after it brings back. A distal change is stated once per episode and measure; a
restatement keeps the earliest.
"""

from __future__ import annotations

from sqlmodel import Session

from events import casework, outcome
from reporting.rows import get, month_of, put, utc
from reporting.tables import ReportActivity, ReportDistal


def activity(session: Session, data: casework.ActivityFacts | casework.ActivityDeleted) -> None:
    at = utc(data.occurred_at)
    row = get(session, ReportActivity, data.activity_id, data.referral_id)
    if isinstance(data, casework.ActivityDeleted):
        if row is None:  # deleted before this consumer saw it logged: a tombstone
            row = put(
                session,
                ReportActivity,
                data.activity_id,
                ReportActivity(
                    activity_id=data.activity_id,
                    referral_id=data.referral_id,
                    episode=data.episode,
                    partner_id=data.partner_id,
                    locality=data.locality,
                    link_worker_id="unknown",
                    activity_type="unknown",
                    direct=False,
                    started_at=at,
                    minutes=0,
                    stated_at=at,
                ),
            )
        row.deleted = True
        return
    corrected = isinstance(data, casework.ActivityCorrected)
    if row is None:
        row = put(
            session,
            ReportActivity,
            data.activity_id,
            ReportActivity(
                activity_id=data.activity_id,
                referral_id=data.referral_id,
                episode=data.episode,
                partner_id=data.partner_id,
                locality=data.locality,
                link_worker_id=data.link_worker_id,
                activity_type=data.activity_type,
                direct=data.direct,
                started_at=utc(data.started_at),
                minutes=data.minutes,
                corrections=int(corrected),
                stated_at=at,
            ),
        )
        return
    row.corrections += int(corrected)
    if row.deleted or at < utc(row.stated_at):
        return  # deleted for good, or an older fact than the one that counts
    row.partner_id, row.locality = data.partner_id, data.locality
    row.link_worker_id, row.activity_type = data.link_worker_id, data.activity_type
    row.direct, row.started_at, row.minutes = data.direct, utc(data.started_at), data.minutes
    row.stated_at = at


def distal(session: Session, data: outcome.DistalChange) -> None:
    key = (data.referral_id, data.episode, data.measure)
    at = utc(data.occurred_at)
    row = get(session, ReportDistal, key, data.referral_id)
    if row is not None and utc(row.occurred_at) <= at:
        return
    if row is None:
        row = put(
            session,
            ReportDistal,
            key,
            ReportDistal(
                referral_id=data.referral_id,
                episode=data.episode,
                measure=data.measure,
                partner_id=data.partner_id,
                window_months=data.window_months,
                before_count=data.before_count,
                after_count=data.after_count,
                occurred_at=at,
                month=month_of(at),
            ),
        )
        return
    row.partner_id, row.window_months = data.partner_id, data.window_months
    row.before_count, row.after_count = data.before_count, data.after_count
    row.occurred_at, row.month = at, month_of(at)
