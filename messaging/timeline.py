"""The referral timeline: a read model built from ``linkway.referrals`` alone, the way a Tier
One partner's case system would build it: where each referral is now (episode, stage,
link worker) and which event put it there.

Linkway's own caseloads come from ``activities.readmodel``, written with the outbox rows; this
table is the consumer's side of the contract, rebuilt by ``linkway rebuild referrals``
(``messaging.replay.rebuild_referrals``). It reads like a tolerant partner: every event type
counts, and fields it does not know are ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

from events.envelope import CloudEvent


class TimelineRow(SQLModel, table=True):
    """One row per referral: its latest known position on the pathway."""

    __tablename__ = "referral_timeline"

    referral_id: str = Field(primary_key=True, max_length=64)
    partner_id: str | None = Field(default=None, max_length=64, index=True)
    locality: str | None = Field(default=None, max_length=64)
    episode: int = 1
    stage: str | None = Field(default=None, max_length=32)
    link_worker_id: str | None = Field(default=None, max_length=64)
    last_event_id: str = Field(max_length=64)
    last_event_type: str = Field(max_length=120)
    last_event_at: datetime
    event_count: int = 0


def apply(row: TimelineRow | None, event: CloudEvent) -> TimelineRow:
    """Fold one event (not seen before) into the referral's row.

    Every event is counted. Only an event at least as recent as the last one moves the
    row, so an old event arriving late (a replay of a window) cannot move it backwards;
    events of one transition share a time, and the later one on the topic wins.
    """
    at = _utc(event.time)
    if row is None:
        row = TimelineRow(
            referral_id=event.subject,
            last_event_id=event.id,
            last_event_type=event.type,
            last_event_at=at,
        )
    row.event_count += 1
    if at < _utc(row.last_event_at):
        return row
    data = event.data
    # Handoff events carry no stage or partner: a field that is absent changes nothing.
    row.partner_id = data.get("partner_id", row.partner_id)
    row.locality = data.get("locality", row.locality)
    row.episode = data.get("episode", row.episode)
    row.stage = data.get("stage", row.stage)
    row.link_worker_id = data.get("link_worker_id", row.link_worker_id)
    row.last_event_id, row.last_event_type, row.last_event_at = event.id, event.type, at
    return row


def _utc(at: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were stored as UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
