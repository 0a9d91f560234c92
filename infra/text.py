"""Free text from outside (names, addresses, notes, directory descriptions): printable,
written once for every model that takes some. Each field still gives its own maximum
length (``Field(max_length=...)``): every free-text field has one.

- ``Line``: one line: no control character at all.
- ``Prose``: text that may run over several lines: tabs and line breaks (``\\t \\n \\r``)
  are allowed, no other control character.

Control characters here are C0 and C1 (``U+0000-U+001F``, ``U+007F-U+009F``) and the
Unicode line and paragraph separators: a NUL cannot be stored in a PostgreSQL text
column (so it must be refused before it reaches one), and none of them belongs in
anything a person reads. The pattern is declared in the OpenAPI document, so clients and
fuzzers see the rule; pydantic checks it with the Rust regex engine, where ``$`` is the
end of the text (a trailing newline does not slip past the one-line rule).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
PROSE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]*$"

Line = Annotated[str, StringConstraints(pattern=LINE_PATTERN)]
Prose = Annotated[str, StringConstraints(pattern=PROSE_PATTERN)]
