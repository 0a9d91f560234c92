"""Durations as a commissioner writes them: "5 working days", "3 months", "30 seconds".

Months are calendar months (a review "3 months after the plan" on 31 January is due on
30 April), and working days skip weekends and the configured bank holidays.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta

UNITS = ("seconds", "minutes", "hours", "days", "working_days", "weeks", "months")
_PATTERN = re.compile(r"^\s*(\d+)\s+([a-z_ ]+?)\s*$")


class DurationError(ValueError):
    pass


def parse(text: str) -> tuple[int, str]:
    match = _PATTERN.match(text.lower())
    if not match:
        raise DurationError(f"{text!r} is not a duration like '5 working days' or '3 months'")
    amount, unit = int(match.group(1)), match.group(2).replace(" ", "_")
    if not unit.endswith("s"):
        unit += "s"
    if unit not in UNITS:
        raise DurationError(f"{text!r}: the unit must be one of {', '.join(UNITS)}")
    return amount, unit


def add(start: datetime, text: str, holidays: frozenset[date] = frozenset()) -> datetime:
    amount, unit = parse(text)
    if unit == "months":
        return _add_months(start, amount)
    if unit == "working_days":
        return _add_working_days(start, amount, holidays)
    if unit == "weeks":
        return start + timedelta(weeks=amount)
    return start + timedelta(**{unit: amount})


def _add_months(start: datetime, months: int) -> datetime:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _add_working_days(start: datetime, days: int, holidays: frozenset[date]) -> datetime:
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current.date() not in holidays:
            remaining -= 1
    return current
