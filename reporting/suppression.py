"""Small-number suppression, applied to every KPI table before it leaves Linkway.

A count of people (or of things that each belong to one person) from 1 to 4 is shown as
``"<5"``. Zero is shown: it discloses nothing about anyone. Then, so that a total or the
other cells cannot give a suppressed cell back:

- **secondary suppression by column**: within each group of rows that add up to a total
  (the rows sharing the table's grouping columns, or the whole table), if exactly one
  cell of a column is suppressed, the next smallest non-zero cell of that column is
  shown as ``"[c]"`` (so at least two are hidden and the total gives back only their
  sum; the mark differs because the value is not under 5);
  and a total row (a row with a value ``"all"``) that adds up a single cell is hidden
  with it;
- **derived values follow their base**: a rate, a mean, a percentile or an interval
  computed from a suppressed count (a row's ``base`` column) is shown as ``null``.

The rules are the NHS England / ONS small-numbers practice for published statistics:
docs/reporting.md has them in words.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

THRESHOLD = 5
SUPPRESSED = "<5"
SECONDARY = "[c]"  # ONS's mark for a value withheld so another cannot be worked out
TOTAL = "all"


def is_small(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < THRESHOLD


def suppress(
    rows: list[dict[str, Any]],
    counts: tuple[str, ...],
    derived: dict[str, str] | None = None,
    group_by: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """A suppressed copy of ``rows``. ``counts`` are the count columns; ``derived`` maps a
    derived column to the count it was computed from; ``group_by`` names the columns whose
    rows add up to one total (none: the whole table is one group)."""
    out = [dict(row) for row in rows]
    hidden: set[tuple[int, str]] = set()
    for i, row in enumerate(out):
        for column in counts:
            if is_small(row.get(column)):
                hidden.add((i, column))
    small = set(hidden)
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, row in enumerate(out):
        groups[tuple(row.get(g) for g in group_by)].append(i)
    for column in counts:
        for members in groups.values():
            cells = [i for i in members if not _is_total(out[i])]
            totals = [i for i in members if _is_total(out[i])]
            shown = [i for i in cells if (i, column) not in hidden]
            if sum((i, column) in hidden for i in cells) == 1:
                # the total (or the other cells) would give the single hidden cell back
                candidates = [i for i in shown if _positive(out[i].get(column))]
                if candidates:
                    smallest = min(candidates, key=lambda i: out[i][column])
                    hidden.add((smallest, column))
            if any((i, column) in hidden for i in cells) and len(cells) == 1:
                hidden.update((t, column) for t in totals)
    for i, column in hidden:
        out[i][column] = SUPPRESSED if (i, column) in small else SECONDARY
    for column, base in (derived or {}).items():
        for i, row in enumerate(out):
            if (i, base) in hidden and column in row:
                row[column] = None
    return out


def _is_total(row: dict[str, Any]) -> bool:
    return any(value == TOTAL for value in row.values())


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
