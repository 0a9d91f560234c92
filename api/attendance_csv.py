"""Reading a provider's attendance upload: a CSV of sessions, one row per person per session.

::

    handoff_id,session_date,status
    9b2f...,2026-06-01,attended
    9b2f...,2026-06-08,did_not_attend

``referral_id`` may be given as a fourth column (the provider tool writes it); it must then
be the handoff's. A row that cannot be read is reported with its line number and the
reason, and the others still count; a file that cannot be read at all (no header, a
missing or unknown column, too many rows) is refused whole.

A session is dated within a plausible window (``implausible_date``): not before the
handoff was requested, not after today; both bounds allow a day for clocks and time
zones that differ. Attendance counts towards outcomes the contract pays for, so a row
dated 9999-12-31 is refused, not counted.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import get_args

from events.ids import is_id
from events.provider import AttendanceReported

REQUIRED = ("handoff_id", "session_date", "status")
OPTIONAL = ("referral_id",)
MAX_ROWS = 1000
STATUSES: tuple[str, ...] = get_args(AttendanceReported.model_fields["status"].annotation)
# [0-9], not \d: \d would take fullwidth or Arabic-Indic digits.
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class CsvRejected(ValueError):
    """The whole upload is unusable; ``str()`` says why."""


@dataclass(frozen=True)
class Row:
    line: int
    handoff_id: str
    session_date: date
    status: str
    referral_id: str | None = None


@dataclass(frozen=True)
class RowError:
    line: int
    handoff_id: str | None
    error: str


def parse(data: bytes) -> tuple[list[Row], list[RowError]]:
    """The rows to apply and the rows refused, each with its line number (header = 1)."""
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is what spreadsheets write
    except UnicodeDecodeError:
        raise CsvRejected("the upload must be UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CsvRejected(
            f"the header must name the columns {', '.join(REQUIRED)} "
            f"(missing: {', '.join(missing)})"
        )
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise CsvRejected(f"unknown column(s) {', '.join(unknown)}; expected {', '.join(REQUIRED)}")
    reader.fieldnames = header
    rows: list[Row] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, date], tuple[int, str]] = {}
    for record in reader:
        if not any((v or "").strip() for v in record.values()):
            continue  # a blank line
        if len(rows) + len(errors) >= MAX_ROWS:
            raise CsvRejected(f"an upload holds at most {MAX_ROWS} rows; split the file")
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in record.items() if k is not None}
        # A refused row is reported with its handoff_id only when that is an id: the
        # report never repeats other text the file held there (a name, say).
        named = values.get("handoff_id", "")
        shown = named if is_id(named) else None
        if None in record:
            errors.append(RowError(line, shown, "the row has too many fields"))
            continue
        row, error = _row(line, values)
        if error is not None:
            errors.append(RowError(line, shown, error))
            continue
        assert row is not None
        key = (row.handoff_id, row.session_date)
        if key in seen and seen[key][1] != row.status:
            earlier, status = seen[key]
            errors.append(
                RowError(
                    line,
                    row.handoff_id,
                    f"line {earlier} reports the same session as {status}; "
                    "send one status per session",
                )
            )
            continue
        seen.setdefault(key, (line, row.status))
        rows.append(row)
    return rows, errors


def _row(line: int, values: dict[str, str]) -> tuple[Row | None, str | None]:
    handoff_id, referral_id = values.get("handoff_id", ""), values.get("referral_id", "")
    if not is_id(handoff_id):
        return None, "handoff_id must be the id from the handoff (letters, digits and _.:-)"
    if referral_id and not is_id(referral_id):
        return None, "referral_id must be the id from the handoff (letters, digits and _.:-)"
    raw_date = values.get("session_date", "")
    try:
        if not _DATE.match(raw_date):
            raise ValueError
        session_date = date.fromisoformat(raw_date)
    except ValueError:
        return None, "session_date must be a date written YYYY-MM-DD"
    status = values.get("status", "")
    if status not in STATUSES:
        return None, f"status must be one of {', '.join(STATUSES)}"
    return Row(line, handoff_id, session_date, status, referral_id or None), None
