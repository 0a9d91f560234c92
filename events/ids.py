"""The two shapes of identifier Linkway accepts anywhere: written once, used everywhere.

- ``Id``: a pseudonymous id or reference (referral, handoff, provider, partner, request,
  consent reference): letters, digits and ``_ . : -``, at most 64 characters. No spaces,
  so no sentence (and no name or note) fits in one.
- ``Code``: a lower-case code from a list someone publishes (reason codes, sources,
  categories): lower-case letters, digits and ``_ . -``, at most 64 characters.

Both are annotated ``str`` types for pydantic models; the patterns and ``is_id`` /
``is_code`` serve code that checks a bare string (path parameters, CSV cells, tools);
they use ``fullmatch``: with ``re.match`` a trailing newline would pass ``$``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

MAX_ID_LENGTH = 64
ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
CODE_PATTERN = r"^[a-z0-9_.-]+$"

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
Code = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=CODE_PATTERN)
]

_ID = re.compile(ID_PATTERN)
_CODE = re.compile(CODE_PATTERN)


def is_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH and _ID.fullmatch(value) is not None


def is_code(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH and _CODE.fullmatch(value) is not None
