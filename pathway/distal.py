"""Distal outcomes: a person's use of other services (GP appointments, A&E attendances,
non-elective admissions, out-of-hours contacts, care packages) in a window of whole
calendar months before an episode's referral, against the same number of months after.

The referral's own month is in neither window: it is part before and part after, and the
referral itself often follows a GP appointment in it. With a 6-month window and a
referral on 10 March 2027, "before" is September 2026 to February 2027 and "after" is
April to September 2027; the after-window closes on 1 October 2027.

A commissioner's feed delivers one count per person, measure and month, a month with no
activity as 0. A month the feed has not delivered is *no data*, not zero: nothing is
stated until every month of both windows is in. Pure functions; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from events.outcome import DistalChange, EngagementAchieved


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def add_months(month: str, n: int) -> str:
    year, mon = (int(part) for part in month.split("-"))
    index = year * 12 + (mon - 1) + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def first_day(month: str) -> date:
    year, mon = (int(part) for part in month.split("-"))
    return date(year, mon, 1)


def last_day(month: str) -> date:
    return date.fromordinal(first_day(add_months(month, 1)).toordinal() - 1)


@dataclass(frozen=True)
class Windows:
    before: tuple[str, ...]  # the months before the referral's month, oldest first
    after: tuple[str, ...]  # the months after it

    @property
    def closes_on(self) -> date:
        """The first day after the after-window: the change can be stated from then."""
        return first_day(add_months(self.after[-1], 1))


def windows(referred_on: date, months: int) -> Windows:
    if months < 1:
        raise ValueError("a distal window is at least one month")
    referral = month_of(referred_on)
    return Windows(
        before=tuple(add_months(referral, -n) for n in range(months, 0, -1)),
        after=tuple(add_months(referral, n) for n in range(1, months + 1)),
    )


@dataclass(frozen=True)
class Change:
    windows: Windows
    before_count: int
    after_count: int

    @property
    def reduction(self) -> int:
        return self.before_count - self.after_count


def change(counts: dict[str, int], referred_on: date, months: int, today: date) -> Change | None:
    """The change in one measure, or None while it cannot be stated: the after-window has
    not closed by ``today``, or a month of either window has no data in ``counts``
    (month ``YYYY-MM`` to count)."""
    span = windows(referred_on, months)
    if today < span.closes_on:
        return None
    if any(m not in counts for m in (*span.before, *span.after)):
        return None
    return Change(
        span,
        before_count=sum(counts[m] for m in span.before),
        after_count=sum(counts[m] for m in span.after),
    )


def missing_months(counts: dict[str, int], referred_on: date, months: int) -> list[str]:
    """The months of both windows the feed has not delivered, for the import report."""
    span = windows(referred_on, months)
    return [m for m in (*span.before, *span.after) if m not in counts]


def fact(
    engagement: EngagementAchieved,
    engagement_id: str,
    measure: str,
    change: Change,
    months: int,
) -> DistalChange:
    """The distal outcome fact an engaged episode earns for ``measure`` once its
    after-window has closed (``change``), evidenced by its engagement event."""
    span = change.windows
    return DistalChange(
        referral_id=engagement.referral_id,
        episode=engagement.episode,
        partner_id=engagement.partner_id,
        locality=engagement.locality,
        occurred_at=datetime.combine(span.closes_on, time(0), tzinfo=UTC),
        evidence_event_ids=[engagement_id],
        consent_recorded=engagement.consent_recorded,
        consent_purposes=engagement.consent_purposes,
        measure=measure,
        window_months=months,
        before_from=first_day(span.before[0]),
        before_to=last_day(span.before[-1]),
        after_from=first_day(span.after[0]),
        after_to=last_day(span.after[-1]),
        before_count=change.before_count,
        after_count=change.after_count,
    )
