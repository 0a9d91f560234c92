"""Path and query parameter types every router shares, from ``events.ids``.

Every object id in a path is an ``IdPath``: its pattern and length are declared in the
OpenAPI document and checked before the route runs, so an id that cannot exist (a NUL,
a space, a sentence, 100,000 characters) is a 422 and never reaches the database (where
a NUL in PostgreSQL is an error, not a miss).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from events.ids import ID_PATTERN, MAX_ID_LENGTH

IdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="an id: letters, digits and _.:- (at most 64)",
    ),
]
# An Annotated alias, not a shared Query(): FastAPI would merge parameters sharing one.
IdQuery = Annotated[str | None, Query(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
