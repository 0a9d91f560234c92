"""One row of a commissioner's distal-activity feed, checked: the person's NHS number, the
measure, the calendar month and the count. The same model reads a CSV line and a Kafka
record, so both doors refuse the same rows with the same reasons.

A reason names the field, never its value: the NHS number must not reach a report, a log
or a dead letter (``str(FeedRowError)`` goes into all three).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from events.ids import Id
from events.outcome import DISTAL_MEASURES, DistalMeasure

COLUMNS = ("nhs_number", "measure", "month", "count")
OPTIONAL_COLUMNS = ("row_id", "extracted_at")
_MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")


class FeedRowError(ValueError):
    """A row that can never be stored; ``str()`` names the fields at fault."""


def normalised_nhs_number(text: str) -> str | None:
    """Ten ASCII digits whose last is the modulus-11 check digit of the first nine (spaces
    and hyphens ignored, as the API's ``nhs_number_is_valid`` does), or None."""
    digits = text.replace(" ", "").replace("-", "")
    if len(digits) != 10 or not (digits.isascii() and digits.isdigit()):
        return None
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9]))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return digits if check != 10 and check == int(digits[9]) else None


class FeedRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nhs_number: str = Field(repr=False)  # never in a repr, so never in a traceback
    measure: DistalMeasure
    month: Annotated[str, Field(pattern=_MONTH.pattern)]
    count: Annotated[int, Field(ge=0, le=10_000)]
    row_id: Id | None = None  # the feed's own id for the row, echoed in the report
    extracted_at: datetime | None = None  # when the source counted it: older copies lose

    @field_validator("nhs_number")
    @classmethod
    def _checked(cls, value: str) -> str:
        digits = normalised_nhs_number(value)
        if digits is None:
            raise ValueError("not a valid NHS number (ten digits with a check digit)")
        return digits


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
