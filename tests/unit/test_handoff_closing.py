"""When an episode ends, every live handoff closes, so no provider keeps access to the
person (the API serves contact details for live handoffs only). Every ending and every
live status, as a table."""

from __future__ import annotations

from datetime import date

import pytest

from pathway import commands as cmd
from pathway.state import ACTIVE_HANDOFF
from tests.unit.pathway_fixtures import Case, at_stage, responded, session


def _four_live_handoffs() -> Case:
    """A supported referral whose four handoffs are requested, accepted, on-hold and
    in-progress."""
    case = at_stage("supported", prescriptions=4)
    requested, accepted, waiting, started = (case.handoff(i) for i in range(4))
    case.fact(responded(accepted, "accept", "e-accept"))
    case.fact(responded(waiting, "waitlist", "e-wait", band="under_1_month"))
    case.fact(session(started, date(2026, 1, 20)))
    statuses = [case.handoff(i).status for i in range(4)]
    assert statuses == ["requested", "accepted", "on-hold", "in-progress"]
    assert requested.status in ACTIVE_HANDOFF
    return case


def _review_dormant(case: Case) -> None:
    case.at(case.state.episode.deadlines["review"]).deadline("review")
    case.do(cmd.RecordReview, decision="dormant")


def _end(reason: str):  # type: ignore[no-untyped-def]
    return lambda case: case.do(cmd.EndEpisode, reason_code=reason)


ENDINGS = {
    "review decides dormant": (_review_dormant, "cancelled", "review_complete"),
    "person withdrew": (_end("withdrawn"), "cancelled", "withdrawn"),
    "person disengaged": (_end("disengaged"), "failed", "disengaged"),
    "consent withdrawn": (
        lambda case: case.do(cmd.WithdrawConsent),
        "cancelled",
        "consent_withdrawn",
    ),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_an_ending_closes_every_live_handoff_with_its_reason(ending: str) -> None:
    end, status, reason = ENDINGS[ending]
    case = _four_live_handoffs()
    end(case)
    closed = [(h.status, h.reason_code) for h in case.state.episode.handoffs.values()]
    assert closed == [(status, reason)] * 4
    assert not any(
        name.startswith(("provider_response:", "waitlist:"))
        for name in case.state.episode.deadlines
    )


def test_a_closed_handoff_stays_closed_when_the_provider_reports_late() -> None:
    case = _four_live_handoffs()
    _end("withdrawn")(case)
    late = case.handoff(0)
    case.fact(responded(late, "accept", "e-late"))
    case.fact(session(late, date(2026, 2, 1), event_id="e-late-session"))
    assert (late.status, late.reason_code) == ("cancelled", "withdrawn")
