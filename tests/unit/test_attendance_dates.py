"""The plausible-date rule both doors apply to attendance (inbound.provider_facts): the
HTTP routes answer 422, the Kafka consumer dead-letters with a reason whose category the
dead-letter metric counts."""

from __future__ import annotations

from datetime import UTC, date, datetime

from inbound.provider_facts import ImplausibleDate, implausible_date
from messaging.deadletters import reason_category

REQUESTED = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
NOW = datetime(2026, 4, 1, 23, 0, tzinfo=UTC)


def test_a_session_between_the_handoff_and_tomorrow_is_plausible() -> None:
    for day in (date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 20), date(2026, 4, 2)):
        assert implausible_date(day, REQUESTED, NOW) is None, day


def test_a_session_in_the_future_or_before_the_handoff_is_not() -> None:
    assert implausible_date(date(9999, 12, 31), REQUESTED, NOW) == "must not be in the future"
    assert implausible_date(date(2026, 4, 3), REQUESTED, NOW) == "must not be in the future"
    assert implausible_date(date(2026, 3, 8), REQUESTED, NOW) == (
        "must not be before the handoff was requested"
    )
    assert implausible_date(date(1, 1, 1), REQUESTED, NOW) is not None


def test_a_dead_lettered_implausible_date_is_counted_as_such() -> None:
    reason = str(ImplausibleDate("implausible date: session_date must not be in the future"))
    assert reason_category(reason) == "implausible_date"
