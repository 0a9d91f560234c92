"""The distal-activity feed's record (topic ``linkway.distal.activity``, and the columns
of the CSV file ``linkway distal import`` reads): a commissioner's or ICB's count of one
person's activity of one kind in one calendar month.

Not a Linkway event and not a CloudEvent: the one inbound record that carries an NHS
number, because the feed's sender knows people by nothing else. Linkway matches it in the
personal-data store and keeps only the pseudonymous referral id; the record is never
republished, and its dead letters are redacted (no NHS number, no key).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from events.ids import Id
from events.nhs_number import normalised_nhs_number
from events.outcome import DistalMeasure

COLUMNS = ("nhs_number", "measure", "month", "count")
OPTIONAL_COLUMNS = ("row_id", "extracted_at")
_MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")


class FeedRow(BaseModel):
    """One person's count of one measure in one month (0 when there was none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nhs_number: str = Field(
        repr=False,  # never in a repr, so never in a traceback
        description="10 digits with a valid check digit; spaces and hyphens are ignored",
    )
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
