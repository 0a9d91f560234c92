"""What every fold into the reporting read models shares: times in UTC and months in the
reporting time zone, and rows found by key in the transaction's own cache before the
database (``reporting.project`` explains why)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session, SQLModel, col, select

from infra.db import chunks
from messaging.consumer import processed_among
from reporting.tables import (
    ReportActivity,
    ReportClaim,
    ReportDistal,
    ReportEpisode,
    ReportHandoff,
    ReportMeasure,
    ReportOutcome,
    ReportSession,
)

# Months are counted in the commissioner's time zone, as the rate cards count them.
TIME_ZONE = ZoneInfo("Europe/London")
CACHE = "reporting.rows"  # session.info: rows this transaction added or read, by key
LOADED = "reporting.loaded"  # session.info: referral ids whose rows are all in the cache
SEEN = "reporting.seen"  # session.info: event ids this transaction applied
CHECKED = "reporting.checked"  # session.info: event ids whose processed record was read

T = TypeVar("T", bound=SQLModel)


def utc(at: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were stored as UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def month_of(at: datetime) -> str:
    return utc(at).astimezone(TIME_ZONE).strftime("%Y-%m")


def earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or utc(at) < utc(current) else current


def get(session: Session, model: type[T], key: Any, referral_id: str | None = None) -> T | None:
    """A row by key: one this transaction added (not flushed yet) or the database's (not
    asked again when a batch preloaded that referral's rows, ``preload``)."""
    cache = session.info.setdefault(CACHE, {})
    found = cache.get((model, key))
    if found is None and referral_id in session.info.get(LOADED, ()):
        return None
    if found is None:
        found = session.get(model, key)
        if found is not None:
            cache[model, key] = found
    return found


def put(session: Session, model: type[T], key: Any, row: T) -> T:
    session.add(row)
    session.info.setdefault(CACHE, {})[model, key] = row
    return row


KEYED_BY_REFERRAL = (
    ReportEpisode,
    ReportActivity,
    ReportDistal,
    ReportHandoff,
    ReportSession,
    ReportMeasure,
    ReportOutcome,
    ReportClaim,
)


def preload(session: Session, values: list[bytes], consumer: str) -> None:
    """Before a batch: read every row of the batch's referrals and the event ids already
    applied, a query per table instead of one per event. Records that are not events are
    left to ``apply``."""
    ids: set[str] = set()
    referrals: set[str] = set()
    for value in values:
        try:
            raw = json.loads(value)
            ids.add(str(raw["id"]))
            referrals.add(str(raw["subject"]))
        except (ValueError, KeyError, TypeError):
            continue
    cache = session.info.setdefault(CACHE, {})
    for model in KEYED_BY_REFERRAL:
        keys = [c.name for c in model.__table__.primary_key.columns]  # type: ignore[union-attr]
        for chunk in chunks(referrals):
            query = select(model).where(col(model.referral_id).in_(chunk))
            for row in session.exec(query):
                key = tuple(getattr(row, k) for k in keys)
                cache[model, key[0] if len(key) == 1 else key] = row
    session.info.setdefault(SEEN, set()).update(processed_among(session, consumer, ids))
    session.info[LOADED] = referrals
    session.info[CHECKED] = ids
