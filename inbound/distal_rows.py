"""Checking a distal-feed row (``events.distal_feed.FeedRow``): the same for a CSV line
and a Kafka record, so both doors refuse the same rows with the same reasons.

A reason names the field, never its value: the NHS number must not reach a report, a log
or a dead letter (``str(FeedRowError)`` goes into all three).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from events.distal_feed import COLUMNS, OPTIONAL_COLUMNS, FeedRow
from events.outcome import DISTAL_MEASURES

__all__ = ["COLUMNS", "OPTIONAL_COLUMNS", "FeedRow", "FeedRowError", "parse_row"]


class FeedRowError(ValueError):
    """A row that can never be stored; ``str()`` names the fields at fault."""


def parse_row(data: dict[str, Any]) -> FeedRow:
    """A checked row, or ``FeedRowError`` naming every field at fault (values left out)."""
    try:
        return FeedRow.model_validate(data)
    except ValidationError as exc:
        raise FeedRowError("; ".join(_reason(e) for e in exc.errors())) from None


def _reason(err: Any) -> str:
    field = ".".join(str(p) for p in err["loc"]) or "row"
    kind = err["type"]
    if kind == "missing":
        return f"{field}: is required"
    if kind == "extra_forbidden":
        return f"{field}: is not a feed column"
    if field == "measure":
        return f"measure: must be one of {', '.join(DISTAL_MEASURES)}"
    if field == "month":
        return "month: must be a calendar month such as 2027-03"
    if field == "count":
        return "count: must be a whole number from 0 to 10000"
    if field == "nhs_number":
        return "nhs_number: not a valid NHS number (ten digits with a check digit)"
    if field == "extracted_at":
        return "extracted_at: must be a date and time such as 2027-04-02T06:00:00Z"
    return f"{field}: is not valid"
