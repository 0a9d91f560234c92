"""Small-number suppression of one table of counts with its total.

Primary: every count under ``THRESHOLD`` (0 included) is shown as ``"<5"``. Secondary:
while the suppressed cells could be worked out from the total and the cells shown
(exactly one cell suppressed, or the suppressed cells together under ``THRESHOLD``), the
smallest cell still shown is suppressed too. A total under ``THRESHOLD`` suppresses the
whole table. So the total minus the shown cells is never a single suppressed count, and
never a number small enough to identify someone.

Pure: counts in, shown values out; ``equality.report`` applies it to every question.
"""

from __future__ import annotations

from collections.abc import Mapping

THRESHOLD = 5
SUPPRESSED = f"<{THRESHOLD}"

Shown = int | str


def suppress(counts: Mapping[str, int]) -> tuple[dict[str, Shown], Shown]:
    """(cells as shown, total as shown) for ``counts`` (category -> people)."""
    total = sum(counts.values())
    if total < THRESHOLD:
        return {k: SUPPRESSED for k in counts}, SUPPRESSED
    hidden = {k for k, n in counts.items() if n < THRESHOLD}
    while hidden and (len(hidden) == 1 or sum(counts[k] for k in hidden) < THRESHOLD):
        shown = [k for k in counts if k not in hidden]
        if not shown:
            break
        hidden.add(min(shown, key=lambda k: (counts[k], k)))
    return {k: SUPPRESSED if k in hidden else n for k, n in counts.items()}, total
