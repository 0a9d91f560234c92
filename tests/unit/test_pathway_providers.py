"""Partner facts from Tier Two providers: responses to handoffs and attendance."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import pytest

from events.handoff import HandoffAttendanceRecorded, HandoffStatusChanged, HandoffUpdated
from events.outcome import ConnectionAchieved
from events.referral import ActionDue
from pathway import commands as cmd
from pathway.rules import providers
from pathway.state import CaseState
from tests.unit.pathway_fixtures import (
    T0,
    Case,
    at_stage,
    config,
    only,
    responded,
    session,
    types,
)

DAY = date(2027, 1, 20)


def supported(**kwargs: Any) -> tuple[Case, Any]:
    case = at_stage("supported", **kwargs)
    return case, case.handoff()


def days(n: int) -> date:
    return DAY + timedelta(days=n)


def dna_action_count(case: Case) -> int:
    return sum(
        1 for _, e in case.events if isinstance(e, ActionDue) and e.action == "disengagement"
    )


# --- responses -----------------------------------------------------------------------------


def test_provider_accepting_moves_the_handoff_to_accepted_and_stops_the_chase() -> None:
    case, handoff = supported()
    version = case.state.version

    decision = case.fact(responded(handoff, "accept", "e-1"))

    change = only(decision, HandoffStatusChanged)
    assert (change.handoff_id, change.status, change.reason_code) == (
        handoff.handoff_id,
        "accepted",
        None,
    )
    assert case.handoff().status == "accepted"
    assert f"provider_response:{handoff.handoff_id}" not in case.state.episode.deadlines
    assert case.state.version == version + 1


def test_provider_rejecting_records_the_reason() -> None:
    case, handoff = supported()

    decision = case.fact(responded(handoff, "reject", "e-1", reason="no_capacity"))

    assert only(decision, HandoffStatusChanged).status == "rejected"
    assert (case.handoff().status, case.handoff().reason_code) == ("rejected", "no_capacity")


def test_a_rejection_without_a_reason_still_carries_one() -> None:
    case, handoff = supported()

    case.fact(responded(handoff, "reject", "e-1"))

    assert case.handoff().reason_code == "unspecified"


def test_waitlist_within_the_allowed_band_puts_the_handoff_on_hold() -> None:
    case, handoff = supported()

    decision = case.fact(responded(handoff, "waitlist", "e-1", band="1_to_3_months"))

    assert types(decision) == [HandoffStatusChanged, HandoffUpdated]
    assert only(decision, HandoffStatusChanged).reason_code == "waitlist_1_to_3_months"
    h = case.handoff()
    assert (h.status, h.waitlist_band) == ("on-hold", "1_to_3_months")
    assert f"provider_response:{handoff.handoff_id}" not in case.state.episode.deadlines


def test_waitlist_beyond_the_maximum_band_escalates_to_the_link_worker() -> None:
    case, handoff = supported()

    decision = case.fact(responded(handoff, "waitlist", "e-1", band="over_3_months"))

    assert types(decision) == [HandoffStatusChanged, HandoffUpdated, ActionDue]
    action = only(decision, ActionDue)
    assert (action.action, action.handoff_id, action.due_at) == (
        "provider_response",
        handoff.handoff_id,
        case.now,
    )
    assert case.handoff().status == "on-hold"


def test_the_maximum_waitlist_band_comes_from_config() -> None:
    case, handoff = supported(cfg=config(max_waitlist_band="under_1_month"))

    decision = case.fact(responded(handoff, "waitlist", "e-1", band="1_to_3_months"))

    assert ActionDue in types(decision)


def test_a_waitlisted_handoff_can_then_be_accepted() -> None:
    case, handoff = supported()
    case.fact(responded(handoff, "waitlist", "e-1", band="under_1_month"))

    case.fact(responded(handoff, "accept", "e-2"))

    h = case.handoff()
    assert (h.status, h.reason_code, h.waitlist_band) == ("accepted", None, None)


# --- attendance ----------------------------------------------------------------------------


def test_attendance_implies_acceptance() -> None:
    case, handoff = supported()

    decision = case.fact(session(handoff, DAY))

    assert only(decision, HandoffStatusChanged).status == "in-progress"
    ep = case.state.episode
    assert (case.handoff().status, case.handoff().attended, ep.attended_sessions) == (
        "in-progress",
        1,
        1,
    )
    assert f"provider_response:{handoff.handoff_id}" not in ep.deadlines


def test_a_late_acceptance_after_attendance_changes_nothing() -> None:
    case, handoff = supported()
    case.fact(session(handoff, DAY))
    before = case.state

    decision = case.fact(responded(handoff, "accept", "e-late"))

    assert decision.events == []
    assert case.state.version == before.version
    assert case.handoff().status == "in-progress"


def test_attendance_restarts_the_no_attendance_clock() -> None:
    case, handoff = supported()
    case.later(days=9)

    case.fact(session(handoff, DAY))

    assert case.state.episode.deadlines["disengagement"] == case.now + timedelta(days=28)


def test_a_duplicate_event_id_is_ignored() -> None:
    case, handoff = supported()
    case.fact(session(handoff, DAY, event_id="e-1"))
    before = case.state

    decision = case.fact(session(handoff, days(7), event_id="e-1"))

    assert decision.events == [] and case.state is before
    assert case.state.episode.attended_sessions == 1


@pytest.mark.parametrize(
    "fact",
    [
        cmd.ProviderResponded(
            event_id="e-x",
            handoff_id="no-such-handoff",
            provider_id="prov-a",
            occurred_at=T0,
            decision="accept",
        ),
        cmd.AttendanceRecorded(
            event_id="e-x",
            handoff_id="no-such-handoff",
            provider_id="prov-a",
            occurred_at=T0,
            session_date=DAY,
            status="attended",
        ),
    ],
    ids=["response", "attendance"],
)
def test_a_fact_for_an_unknown_handoff_is_recorded_as_seen_and_ignored(
    fact: cmd.PartnerFact,
) -> None:
    case, _ = supported()
    before = case.state

    decision = case.fact(fact)

    assert decision.events == []
    assert case.state.version == before.version
    assert case.state.episode == before.episode
    assert case.state.seen_events == ["e-x"]


def test_a_fact_from_another_provider_is_ignored() -> None:
    case, handoff = supported()
    before = case.state

    decision = case.fact(responded(handoff, "reject", "e-1", provider_id="prov-other"))
    case.fact(session(handoff, DAY).model_copy(update={"provider_id": "prov-other"}))

    assert decision.events == []
    assert case.state.episode == before.episode
    assert case.state.version == before.version


# --- order and duplicates ------------------------------------------------------------------


def normalised(state: CaseState) -> dict[str, Any]:
    """The state with what legitimately depends on arrival order taken out: the version
    counts changes (a late acceptance changes nothing), and the lists of seen event ids
    and of attendance evidence keep arrival order."""
    data = state.model_dump()
    data.pop("version")
    data["seen_events"] = sorted(data["seen_events"])
    data["episode"]["evidence"] = {k: sorted(v) for k, v in data["episode"]["evidence"].items()}
    return data


def run(facts: list[cmd.PartnerFact]) -> Case:
    case, _ = supported()
    for fact in facts:
        case.fact(fact)
    return case


def facts_for(case: Case, *extra: str) -> list[cmd.PartnerFact]:
    handoff = case.handoff()
    facts: list[cmd.PartnerFact] = [
        responded(handoff, "accept", "e-accept"),
        session(handoff, days(0), "attended"),
        session(handoff, days(7), "did_not_attend"),
        session(handoff, days(14), "attended"),
        session(handoff, days(21), "attended"),
        session(handoff, days(28), "cancelled_by_person"),
    ]
    if "waitlist" in extra:
        facts[0] = responded(handoff, "waitlist", "e-wait", band="over_3_months")
    return facts


@pytest.mark.parametrize("extra", [(), ("waitlist",)], ids=["plain", "after_waitlist"])
def test_every_arrival_order_gives_the_in_order_final_state(extra: tuple[str, ...]) -> None:
    facts = facts_for(supported()[0], *extra)
    expected = normalised(run(facts).state)
    assert expected["episode"]["outcomes"] == ["engagement", "connection"]
    assert expected["episode"]["handoffs"][facts[1].handoff_id]["status"] == "in-progress"

    for order in itertools.permutations(facts):
        assert normalised(run(list(order)).state) == expected, [f.event_id for f in order]


def test_duplicate_deliveries_in_any_order_give_the_in_order_final_state() -> None:
    facts = facts_for(supported()[0])[:5]
    expected = normalised(run(facts).state)

    for order in itertools.permutations(facts):
        doubled = [f for fact in order for f in (fact, fact)]
        assert normalised(run(doubled + list(reversed(order))).state) == expected


def test_every_arrival_order_of_a_streak_raises_disengagement_exactly_once() -> None:
    handoff = supported()[0].handoff()
    facts = [
        responded(handoff, "accept", "e-accept"),
        session(handoff, days(0), "attended"),
        *(session(handoff, days(n), "did_not_attend") for n in (7, 14, 21)),
    ]
    expected = normalised(run(facts).state)
    assert expected["episode"]["disengaged"] is True

    for order in itertools.permutations(facts):
        case = run(list(order))
        assert normalised(case.state) == expected
        assert dna_action_count(case) == 1, [f.event_id for f in order]


# --- disengagement -------------------------------------------------------------------------


def test_three_consecutive_did_not_attends_raise_one_disengagement_action() -> None:
    case, handoff = supported()
    case.fact(session(handoff, days(0)))
    case.fact(session(handoff, days(7), "did_not_attend"))
    case.fact(session(handoff, days(14), "did_not_attend"))
    assert dna_action_count(case) == 0

    decision = case.fact(session(handoff, days(21), "did_not_attend"))
    case.fact(session(handoff, days(28), "did_not_attend"))

    action = only(decision, ActionDue)
    assert (action.action, action.due_at, action.stage) == ("disengagement", case.now, "supported")
    assert case.state.episode.disengaged is True
    assert dna_action_count(case) == 1


def test_the_streak_counts_session_dates_not_arrival_order() -> None:
    case, handoff = supported()
    case.fact(session(handoff, days(21)))  # the latest session was attended
    for n in (0, 7, 14):
        case.fact(session(handoff, days(n), "did_not_attend"))

    assert dna_action_count(case) == 0
    assert case.state.episode.disengaged is False


def test_a_late_report_of_an_earlier_attendance_does_not_raise_disengagement_again() -> None:
    case, handoff = supported()
    for n in (7, 14, 21):
        case.fact(session(handoff, days(n), "did_not_attend"))
    assert dna_action_count(case) == 1

    case.fact(session(handoff, days(0)))

    assert dna_action_count(case) == 1
    assert case.state.episode.disengaged is True


def test_a_cancelled_session_neither_breaks_nor_extends_the_streak() -> None:
    case, handoff = supported()
    case.fact(session(handoff, days(0), "did_not_attend"))
    case.fact(session(handoff, days(7), "cancelled_by_provider"))
    case.fact(session(handoff, days(14), "did_not_attend"))
    assert dna_action_count(case) == 0

    case.fact(session(handoff, days(21), "did_not_attend"))

    assert dna_action_count(case) == 1


def test_attending_again_rearms_the_disengagement_rule() -> None:
    case, handoff = supported()
    for n in (0, 7, 14):
        case.fact(session(handoff, days(n), "did_not_attend"))
    case.fact(session(handoff, days(21)))
    assert case.state.episode.disengaged is False

    for n in (28, 35, 42):
        case.fact(session(handoff, days(n), "did_not_attend"))

    assert dna_action_count(case) == 2


def test_the_did_not_attend_limit_comes_from_config() -> None:
    case, handoff = supported(cfg=config(disengage_consecutive_dna=1))

    decision = case.fact(session(handoff, DAY, "did_not_attend"))

    assert only(decision, ActionDue).action == "disengagement"


# --- connection ----------------------------------------------------------------------------


def test_connection_is_stated_once_at_the_configured_number_of_sessions() -> None:
    case, handoff = supported(prescriptions=2)
    other = case.handoff(1)
    case.fact(session(handoff, days(0), event_id="a-1"))
    case.fact(session(other, days(1), event_id="a-2"))
    case.fact(session(handoff, days(2), "did_not_attend", event_id="d-1"))
    assert not [e for _, e in case.events if isinstance(e, ConnectionAchieved)]

    decision = case.fact(session(other, days(3), event_id="a-3"))
    later = case.fact(session(handoff, days(4), event_id="a-4"))

    connection = only(decision, ConnectionAchieved)
    assert (connection.attended_sessions, connection.episode) == (3, 1)
    assert connection.evidence_event_ids == ["a-1", "a-2", "a-3"]
    assert ConnectionAchieved not in types(later)
    assert case.state.episode.outcomes.count("connection") == 1


def test_connection_sessions_come_from_config() -> None:
    case, handoff = supported(cfg=config(connection_sessions=1))

    decision = case.fact(session(handoff, DAY))

    assert only(decision, ConnectionAchieved).attended_sessions == 1


def test_a_redelivered_attendance_does_not_count_towards_connection() -> None:
    case, handoff = supported()
    for _ in range(3):
        case.fact(session(handoff, DAY, event_id="a-1"))
    case.fact(session(handoff, days(7), event_id="a-2"))

    assert case.state.episode.attended_sessions == 2
    assert "connection" not in case.state.episode.outcomes


# --- the attendance event reporting reads ----------------------------------------------------


def test_an_applied_attendance_report_raises_its_event_with_an_id_from_the_fact() -> None:
    case, handoff = supported()
    version = case.state.version

    decision = case.fact(session(handoff, DAY, "did_not_attend", event_id="e-1"))

    recorded = only(decision, HandoffAttendanceRecorded)
    assert (recorded.handoff_id, recorded.session_date, recorded.status) == (
        handoff.handoff_id,
        DAY,
        "did_not_attend",
    )
    event_id = next(i for i, e in decision.events if isinstance(e, HandoffAttendanceRecorded))
    assert (
        event_id
        == providers.attendance_recorded(case.state, session(handoff, DAY, event_id="e-1"))[0]
    )
    assert case.state.version == version + 1
    # a correction of the same session raises it again, with the new status
    corrected = case.fact(session(handoff, DAY, "attended", event_id="e-2"))
    assert only(corrected, HandoffAttendanceRecorded).status == "attended"
    # the same report again, or one for a handoff it does not know, raises nothing
    assert case.fact(session(handoff, DAY, "attended", event_id="e-3")).events == []
    assert types(case.fact(session(handoff, DAY, "attended", event_id="e-2"))) == []
