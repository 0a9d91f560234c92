"""The waitlist escalation follows the handoff, whatever order the provider's answers
arrive in: a waitlist beyond the plan's limit is an action due only while the handoff is
still on hold, so a later acceptance (or rejection, or cancellation) resolves it."""

from __future__ import annotations

import itertools

import pytest

from pathway import commands as cmd
from tests.unit.pathway_fixtures import at_stage, responded, session
from tests.unit.test_pathway_providers import days, normalised


@pytest.mark.parametrize(
    ("decision", "reason"), [("accept", None), ("reject", "full")], ids=["accept", "reject"]
)
def test_a_long_waitlist_then_an_answer_gives_the_same_state_in_either_order(
    decision: str, reason: str | None
) -> None:
    handoff = at_stage("supported").handoff()
    facts = [
        responded(handoff, "waitlist", "e-wait", band="over_3_months"),
        responded(handoff, decision, "e-answer", reason=reason),
    ]
    finals = []
    for order in itertools.permutations(facts):
        case = at_stage("supported")
        for fact in order:
            case.fact(fact)
        finals.append(normalised(case.state))

    assert finals[0] == finals[1]
    assert f"waitlist:{handoff.handoff_id}" not in finals[0]["episode"]["overdue"]


def test_a_long_waitlist_stays_an_action_due_while_the_handoff_is_on_hold() -> None:
    case = at_stage("supported")
    handoff = case.handoff()

    case.fact(responded(handoff, "waitlist", "e-wait", band="over_3_months"))
    case.fact(responded(handoff, "waitlist", "e-wait-2", band="1_to_3_months"))

    assert case.state.episode.overdue == [f"waitlist:{handoff.handoff_id}"]
    case.fact(session(handoff, days(0)))
    assert case.state.episode.overdue == []


def test_withdrawing_consent_cancels_the_handoff_and_its_waitlist_action() -> None:
    case = at_stage("supported")
    handoff = case.handoff()
    case.fact(responded(handoff, "waitlist", "e-wait", band="over_3_months"))

    case.do(cmd.WithdrawConsent)

    assert case.handoff().status == "cancelled"
    assert case.state.episode.overdue == []
