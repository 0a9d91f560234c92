"""Every FHIR Task status a handoff can have is reachable, and by whom: one row per
transition, driven through the pure rules (no servers). Each move is announced twice:
on the referral lifecycle topic and, as ``linkway.handoff.updated.v1``, on the
provider's own topic."""

from __future__ import annotations

import typing
from collections.abc import Callable
from datetime import date

import pytest

from events.handoff import HandoffStatus, HandoffStatusChanged, HandoffUpdated
from pathway import commands as cmd
from pathway import rules
from pathway.state import Handoff
from tests.unit.pathway_fixtures import Case, at_stage, prescription, responded, session


def _complete(case: Case, h: Handoff) -> None:
    fact = responded(h, "complete", "e-done").model_copy(
        update={"delivered_code": "course_completed", "sessions_delivered": 8}
    )
    case.fact(fact)


def _no_response(case: Case, h: Handoff) -> None:
    case.at(case.state.episode.deadlines[f"provider_response:{h.handoff_id}"])
    case.deadline(f"provider_response:{h.handoff_id}")
    name = f"provider_failed:{h.handoff_id}"
    case.at(case.state.episode.deadlines[name]).deadline(name)


def _step(*steps: Callable[[Case, Handoff], object]) -> Callable[[Case, Handoff], None]:
    def run(case: Case, h: Handoff) -> None:
        for step in steps:
            step(case, h)

    return run


def _accept(case: Case, h: Handoff) -> None:
    case.fact(responded(h, "accept", "e-accept"))


def _cancel(case: Case, h: Handoff) -> None:
    case.do(cmd.CancelHandoff, handoff_id=h.handoff_id, reason_code="person_moved_away")


# (name, how, status, reason)
TRANSITIONS: list[tuple[str, Callable[[Case, Handoff], object], str, str | None]] = [
    ("the plan requests it", lambda case, h: None, "requested", None),
    ("the provider accepts", _accept, "accepted", None),
    (
        "the provider rejects",
        lambda case, h: case.fact(responded(h, "reject", "e-r", reason="full")),
        "rejected",
        "full",
    ),
    (
        "the provider waitlists",
        lambda case, h: case.fact(responded(h, "waitlist", "e-w", band="under_1_month")),
        "on-hold",
        "waitlist_under_1_month",
    ),
    (
        "a session is reported",
        lambda case, h: case.fact(session(h, date(2027, 1, 20))),
        "in-progress",
        None,
    ),
    (
        "the provider starts it",
        _step(_accept, lambda case, h: case.fact(responded(h, "start", "e-start"))),
        "in-progress",
        None,
    ),
    ("the provider completes it", _step(_accept, _complete), "completed", None),
    ("no answer after the escalation", _no_response, "failed", "no_response"),
    ("the link worker cancels it", _step(_accept, _cancel), "cancelled", "person_moved_away"),
    (
        "a revised plan drops it",
        lambda case, h: case.do(
            cmd.AgreePlan, goal_count=1, prescriptions=[prescription("prov-b", "debt")]
        ),
        "cancelled",
        "plan_revised",
    ),
]


@pytest.mark.parametrize(("name", "how", "status", "reason"), TRANSITIONS, ids=lambda v: v)
def test_each_transition_moves_the_handoff_and_tells_the_provider(
    name: str, how: Callable[[Case, Handoff], object], status: str, reason: str | None
) -> None:
    case = at_stage("supported")
    handoff_id = case.handoff().handoff_id
    before = len(case.events)

    how(case, case.handoff())

    handoff = case.state.episode.handoffs[handoff_id]
    assert (handoff.status, handoff.reason_code) == (status, reason)
    if status != "requested":
        moved = [d for _, d in case.events[before:] if getattr(d, "handoff_id", None) == handoff_id]
        # The lifecycle's status change, then the provider's own update (other facts of the
        # same move, an attendance recorded say, may come between or after).
        changed = [i for i, d in enumerate(moved) if isinstance(d, HandoffStatusChanged)]
        told = [i for i, d in enumerate(moved) if isinstance(d, HandoffUpdated)]
        assert changed and told and changed[-1] < told[-1]
        update = moved[told[-1]]
        assert (update.status, update.reason_code) == (status, reason)
        assert update.model_dump(include={"provider_id"}) == {"provider_id": "prov-a"}


def test_every_handoff_status_is_reachable() -> None:
    assert {status for _, _, status, _ in TRANSITIONS} == set(typing.get_args(HandoffStatus))


def test_a_completion_tells_the_provider_topic_what_was_delivered() -> None:
    case = at_stage("supported")
    _complete(case, case.handoff())
    updated = [d for _, d in case.events if isinstance(d, HandoffUpdated)][-1]
    assert (updated.status, updated.delivered_code, updated.sessions_delivered) == (
        "completed",
        "course_completed",
        8,
    )
    assert updated.TOPIC.format(provider_id="prov-a") == "linkway.handoffs.prov-a"


def test_a_revised_plan_keeps_the_handoffs_it_still_prescribes() -> None:
    case = at_stage("supported", prescriptions=1)
    kept = case.handoff().handoff_id
    case.do(
        cmd.AgreePlan,
        goal_count=2,
        prescriptions=[prescription(), prescription("prov-b", "debt")],
    )
    statuses = {
        h.provider_id: (h.handoff_id, h.status) for h in case.state.episode.handoffs.values()
    }
    assert statuses["prov-a"] == (kept, "requested")
    assert statuses["prov-b"][1] == "requested"
    assert len(case.state.episode.handoffs) == 2


def test_an_answer_before_the_failure_deadline_stops_it() -> None:
    case = at_stage("supported")
    h = case.handoff()
    case.at(case.state.episode.deadlines[f"provider_response:{h.handoff_id}"])
    case.deadline(f"provider_response:{h.handoff_id}")
    assert f"provider_failed:{h.handoff_id}" in case.state.episode.deadlines
    case.fact(responded(h, "accept", "e-late"))
    assert f"provider_failed:{h.handoff_id}" not in case.state.episode.deadlines
    assert case.handoff().status == "accepted"


def test_without_the_setting_an_unanswered_handoff_is_only_escalated() -> None:
    from tests.unit.pathway_fixtures import config

    case = at_stage("supported", cfg=config(provider_fail_after_escalation=None))
    h = case.handoff()
    case.at(case.state.episode.deadlines[f"provider_response:{h.handoff_id}"])
    case.deadline(f"provider_response:{h.handoff_id}")
    assert not any(n.startswith("provider_failed:") for n in case.state.episode.deadlines)


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_a_link_worker_cannot_cancel_a_finished_handoff(status: str) -> None:
    case = at_stage("supported")
    h = case.handoff()
    _accept(case, h)
    (_complete if status == "completed" else _cancel)(case, h)
    with pytest.raises(rules.Conflict, match="already"):
        _cancel(case, case.handoff())


def test_cancelling_an_unknown_handoff_is_rejected() -> None:
    case = at_stage("supported")
    with pytest.raises(rules.Rejected, match="no handoff"):
        case.do(cmd.CancelHandoff, handoff_id="nope", reason_code="x")
