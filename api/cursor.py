"""Opaque page cursors: the sort key of the last item on a page, base64url-encoded.

Keyset pagination: the next page starts strictly after that key, so pages stay stable
while rows are added. A cursor that does not decode is a 422 problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query
from pydantic import BeforeValidator

from api.problems import Problem

Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
# [0-9], not \d: \d would also take fullwidth or Arabic-Indic digits.
RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?$"
)


def _rfc3339(value: object) -> object:
    # Lax parsing would read "0.5" as seconds since 1970: only ISO 8601 times are accepted.
    if isinstance(value, str) and not RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-05-01T09:00:00Z")
    return value


# A time in a query string.
Instant = Annotated[datetime, BeforeValidator(_rfc3339)]


def encode(*key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode(cursor: str, parts: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        key = None
    # A cursor is the client's text: one we did not issue may hold a NUL, which PostgreSQL
    # cannot compare (a database error, not a miss), so only printable keys pass.
    if (
        not isinstance(key, list)
        or len(key) != parts
        or not all(isinstance(k, str) and k.isprintable() for k in key)
    ):
        raise Problem(422, "Bad cursor", "pass back a next_cursor exactly as it was given")
    return key


def utc(value: datetime) -> datetime:
    """A query's time in UTC, as the tables hold them; a time without an offset is UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise Problem(422, "Invalid request", "a time is out of range") from None
