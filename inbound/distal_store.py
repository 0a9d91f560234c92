"""The distal-activity table: one count per referral, measure and month, as the feed last
said it. Only the pseudonymous referral id: the NHS number the feed matched on is not here."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field, Session, SQLModel, select


class DistalActivity(SQLModel, table=True):
    """One count per referral, measure and month, as the feed last said it."""

    __tablename__ = "distal_activity"

    referral_id: str = Field(primary_key=True, max_length=64)
    measure: str = Field(primary_key=True, max_length=32)
    month: str = Field(primary_key=True, max_length=7)
    count: int
    revision: int = 1
    extracted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    source: str = Field(max_length=64)
    updated_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True)
    )


def counts_for(session: Session, referral_id: str) -> dict[str, dict[str, int]]:
    """Measure to month to count, for one referral."""
    rows = session.exec(select(DistalActivity).where(DistalActivity.referral_id == referral_id))
    result: dict[str, dict[str, int]] = {}
    for row in rows:
        result.setdefault(row.measure, {})[row.month] = row.count
    return result
