"""The distal-activity feed: a commissioner's or ICB's counts of each person's GP
appointments, A&E attendances, admissions... per month, matched to cases and stored.

Whichever door a row comes in by (``linkway distal import`` for a CSV file, the
``linkway.distal.activity`` topic), it goes the same way:

1. checked (``inbound.distal_rows``): a malformed row is reported with the fields at fault;
2. matched by NHS number through the personal-data store (the ``Match`` given to the
   feed; the store alone can read NHS numbers): a row for nobody Linkway supports is
   reported ``unmatched``;
3. stored against each matching referral id, by (referral, measure, month): the same row
   again is ``unchanged``, a different count ``corrected`` (the revision goes up), and a
   copy extracted before the stored one ``stale`` and ignored. Re-importing a file
   changes nothing;
4. the matched referrals' distal outcomes are stated (``inbound.distal_outcomes``) once
   their windows are complete and closed. Stating is idempotent, so a row that comes
   again after a crash between storing and stating states what was missed.

Only the pseudonymous referral id is stored. The NHS number is in no table of this
module, no report, no log line and no event.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session

from events.ids import is_id
from inbound.distal_outcomes import DistalOutcomes
from inbound.distal_rows import COLUMNS, OPTIONAL_COLUMNS, FeedRow, FeedRowError, parse_row
from inbound.distal_store import DistalActivity
from infra.db import transaction

# The personal-data store's match: an NHS number to the referral ids of the person's cases.
Match = Callable[[str], list[str]]
Status = Literal["stored", "corrected", "unchanged", "stale", "unmatched", "malformed"]
REPORT_COLUMNS = ("row", "row_id", "status", "reason")


@dataclass(frozen=True)
class RowResult:
    row: str  # where the row was: "line 7" of a file, or topic[partition]@offset
    row_id: str | None
    status: Status
    reason: str = ""


def _stored_status(session: Session, referral_id: str, row: FeedRow, source: str) -> Status:
    key = (referral_id, row.measure, row.month)
    found = session.get(DistalActivity, key)
    if found is None:
        session.add(
            DistalActivity(
                referral_id=referral_id,
                measure=row.measure,
                month=row.month,
                count=row.count,
                extracted_at=row.extracted_at,
                source=source,
            )
        )
        return "stored"
    newer = row.extracted_at is not None and (
        found.extracted_at is None or _utc(row.extracted_at) > _utc(found.extracted_at)
    )
    if found.count == row.count:
        if newer:  # the same count, counted again later: a later stale copy must lose to it
            found.extracted_at = row.extracted_at
            session.add(found)
        return "unchanged"
    if row.extracted_at and found.extracted_at and not newer:
        return "stale"
    found.count, found.extracted_at = row.count, row.extracted_at
    found.revision += 1
    found.source, found.updated_at = source, datetime.now(UTC)
    session.add(found)
    return "corrected"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class DistalFeed:
    def __init__(self, engine: Engine, match: Match, outcomes: DistalOutcomes, source: str):
        self.engine = engine
        self.match = match
        self.outcomes = outcomes
        self.source = source

    def apply(self, where: str, data: dict[str, Any], today: date | None = None) -> RowResult:
        """Check, match and store one row, then state what its referrals now complete."""
        result, referral_ids = self._store(where, data)
        for referral_id in referral_ids:
            self.outcomes.state(referral_id, today)
        return result

    def import_csv(self, text: str, today: date | None = None) -> list[RowResult]:
        """Every row of a file, then each referral it touched stated once (not per row)."""
        results: list[RowResult] = []
        touched: set[str] = set()
        for where, data in _lines(text):
            if isinstance(data, str):
                results.append(RowResult(where, None, "malformed", data))
                continue
            result, referral_ids = self._store(where, data)
            results.append(result)
            touched.update(referral_ids)
        for referral_id in sorted(touched):
            self.outcomes.state(referral_id, today)
        return results

    def _store(self, where: str, data: dict[str, Any]) -> tuple[RowResult, list[str]]:
        row_id = data.get("row_id") if isinstance(data.get("row_id"), str) else None
        try:
            row = parse_row(data)
        except FeedRowError as exc:
            return RowResult(where, _safe_id(row_id), "malformed", str(exc)), []
        referral_ids = self.match(row.nhs_number)
        if not referral_ids:
            return RowResult(where, row.row_id, "unmatched", "no case for this NHS number"), []
        with transaction(self.engine) as session:
            statuses = [_stored_status(session, r, row, self.source) for r in referral_ids]
        status, reason = _overall(statuses), ""
        if status == "corrected" and any(
            self.outcomes.stated_covering(r, row.measure, row.month) for r in referral_ids
        ):
            reason = "an outcome stated before this correction is unchanged; dispute it"
        return RowResult(where, row.row_id, status, reason), referral_ids


def _lines(text: str) -> Iterator[tuple[str, dict[str, Any] | str]]:
    """(where, the row's cells) for each line of a CSV file, or (where, the problem)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in (*COLUMNS, *OPTIONAL_COLUMNS)]
    if missing or unknown:
        problem = f"missing columns: {', '.join(missing)}" if missing else ""
        problem += "; " if missing and unknown else ""
        problem += f"unknown columns: {', '.join(unknown)}" if unknown else ""
        yield "line 1", problem
        return
    for line, raw in enumerate(reader, start=2):
        if None in raw:
            yield f"line {line}", "more cells than columns"
            continue
        cells = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        yield f"line {line}", {k: v for k, v in cells.items() if v != ""}


def _overall(statuses: Iterable[Status]) -> Status:
    order: tuple[Status, ...] = ("corrected", "stored", "stale", "unchanged")
    seen = set(statuses)
    return next(s for s in order if s in seen)


def _safe_id(row_id: str | None) -> str | None:
    return row_id if row_id is not None and is_id(row_id) else None


def report_csv(results: Iterable[RowResult]) -> str:
    """The row-by-row report the feed's sender gets back: where, the feed's own row id,
    what happened and why. No NHS number and no referral id."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for r in results:
        writer.writerow([r.row, r.row_id or "", r.status, r.reason])
    return out.getvalue()


def summary(results: list[RowResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"{len(results)} rows: {parts or 'none'}"
