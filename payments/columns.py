"""Time columns of the payment engine's tables: stored with their zone, read back as UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime


def utc_column() -> DateTime:
    return DateTime(timezone=True)


def utc(moment: datetime) -> datetime:
    """SQLite returns naive times; every time the payment engine stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
