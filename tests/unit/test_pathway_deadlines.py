"""Deadlines, and what every command shares: the stage it needs, optimistic concurrency
and idempotence by request id."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from events.referral import ActionDue
from pathway import commands as cmd
from pathway import rules
from pathway.rules import Conflict, deadlines
from tests.unit.pathway_fixtures import (
    STAGES,
    WEMWBS_LOW,
    Case,
    at_stage,
    measure,
    only,
    prescription,
    responded,
    session,
    wemwbs,
)


def fire(case: Case, name: str) -> ActionDue:
    """Move the clock to the deadline and let it pass; return the action it raised."""
    version = case.state.version
    due_at = case.state.episode.deadlines[name]
    decision = case.at(due_at).deadline(name)
    action = only(decision, ActionDue)
    assert action.due_at == due_at and action.occurred_at == due_at
    assert name not in case.state.episode.deadlines
    assert name in case.state.episode.overdue
    assert case.state.version == version + 1
    return action


# --- each deadline -------------------------------------------------------------------------


def test_first_contact_passing_puts_the_contact_on_the_caseload_until_made() -> None:
    case = at_stage("contacting")

    action = fire(case, "first_contact")
    assert (action.action, action.stage, action.handoff_id) == ("first_contact", "contacting", None)
    case.do(cmd.RecordContactAttempt, outcome="no_answer")
    assert case.state.episode.overdue == ["first_contact"]
    case.do(cmd.RecordContactAttempt, outcome="contacted")

    assert case.state.episode.overdue == []


def test_midpoint_passing_is_due_until_the_checkin_is_recorded() -> None:
    case = at_stage("supported")

    assert fire(case, "midpoint_checkin").action == "midpoint_checkin"
    assert case.stage == "supported"
    case.do(cmd.RecordCheckin, on_track=True)

    assert "midpoint_checkin" not in case.state.episode.overdue


def test_review_date_passing_moves_supported_to_review() -> None:
    case = at_stage("supported")

    action = fire(case, "review")

    assert (action.action, action.stage) == ("review", "review")
    assert case.stage == "review"
    case.do(cmd.RecordReview, decision="new_plan")
    assert case.state.episode.overdue == []
    assert case.stage == "planning"


def test_followup_passing_is_due_until_the_followup_is_recorded() -> None:
    case = at_stage("review")
    case.do(cmd.RecordReview, decision="dormant")

    action = fire(case, "followup")
    assert (action.action, action.stage) == ("followup", "dormant")
    case.later(days=30).do(cmd.RecordFollowup, measures=[wemwbs()])

    assert case.state.episode.overdue == []
    assert case.stage == "dormant"


def test_provider_response_passing_names_the_handoff_until_the_provider_answers() -> None:
    case = at_stage("supported")
    handoff = case.handoff()
    name = f"provider_response:{handoff.handoff_id}"

    action = fire(case, name)
    assert (action.action, action.handoff_id) == ("provider_response", handoff.handoff_id)
    case.fact(responded(handoff, "accept", "e-late"))

    assert name not in case.state.episode.overdue


def test_no_attendance_passing_is_a_disengagement_action_until_someone_attends() -> None:
    case = at_stage("supported")
    handoff = case.handoff()

    assert fire(case, "disengagement").action == "disengagement"
    case.fact(session(handoff, case.now.date()))

    assert "disengagement" not in case.state.episode.overdue
    assert case.state.episode.deadlines["disengagement"] == case.now + timedelta(days=28)


def test_a_deadline_that_is_not_pending_changes_nothing() -> None:
    case = at_stage("supported")
    case.do(cmd.RecordCheckin, on_track=True)
    before = case.state

    decision = case.deadline("midpoint_checkin")

    assert decision.events == []
    assert case.state.version == before.version
    assert case.state.episode == before.episode


def test_going_dormant_stops_every_pending_deadline() -> None:
    case = at_stage("contacting")
    fire(case, "first_contact")
    for _ in range(3):
        case.do(cmd.RecordContactAttempt, outcome="no_answer")

    assert case.state.episode.deadlines == {} and case.state.episode.overdue == []
    assert deadlines.next_deadline(case.state) is None


def test_due_now_lists_passed_deadlines_earliest_first() -> None:
    case = at_stage("supported")
    ep = case.state.episode
    handoff_deadline = f"provider_response:{case.handoff().handoff_id}"

    assert deadlines.due_now(case.state, case.now) == []
    assert deadlines.next_deadline(case.state) == ep.deadlines[handoff_deadline]
    assert deadlines.due_now(case.state, ep.deadlines["midpoint_checkin"]) == [
        handoff_deadline,
        "disengagement",
        "midpoint_checkin",
    ]
    assert deadlines.due_now(case.state, ep.deadlines["review"]) == [
        handoff_deadline,
        "disengagement",
        "midpoint_checkin",
        "review",
    ]


# --- the stage each command needs ----------------------------------------------------------

SUPPORTING = {"supported", "review", "ongoing_support"}
EVERY_STAGE = set(STAGES)
STAGE_RULES: dict[type[cmd.Command], tuple[dict[str, Any], set[str]]] = {
    cmd.AcceptReferral: ({}, {"triage"}),
    cmd.DeclineReferral: ({"reason_code": "out_of_area"}, {"triage"}),
    cmd.RecordContactAttempt: ({"outcome": "no_answer"}, {"contacting"}),
    cmd.RecordAssessment: (
        {"support_level": "2", "measures": [measure("WEMWBS", WEMWBS_LOW)]},
        {"assessment"},
    ),
    # Not at review: the review is recorded first and its decision opens the next cycle.
    cmd.AgreePlan: ({"goal_count": 1}, {"planning", "supported", "ongoing_support"}),
    cmd.RecordCheckin: ({"on_track": True}, SUPPORTING),
    cmd.RecordReview: ({"decision": "ongoing_support", "early_reason_code": "early"}, SUPPORTING),
    cmd.AssignLinkWorker: ({"link_worker_id": "lw-2"}, EVERY_STAGE),
    cmd.ReEnter: ({"source": "self", "referrer_org_id": "self"}, EVERY_STAGE),
    cmd.WithdrawConsent: ({}, EVERY_STAGE),
    cmd.EndEpisode: ({"reason_code": "withdrawn"}, EVERY_STAGE - {"dormant"}),
}
# Not gated by stage but by what is open: consent on record, an open deadline, an open
# follow-up, a live handoff. Their own rejections are tested with their rules.
UNGATED = {
    cmd.GiveConsent,
    cmd.RescheduleDeadline,
    cmd.RecordFollowup,
    cmd.CancelHandoff,
    cmd.RecordCompletionReport,  # dormant, after a plan: tested with its rule
    cmd.RecordSignpostCheck,  # a signposting plan, not a stage: tested with its rule
    cmd.LogActivity,  # any stage: time is logged whatever the stage
    cmd.CorrectActivity,  # a logged activity: tested with its rule
    cmd.DeleteActivity,
}


def test_the_stage_table_covers_every_command() -> None:
    assert set(STAGE_RULES) | UNGATED == set(rules.BY_COMMAND)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("command", list(STAGE_RULES), ids=lambda c: c.__name__)
def test_every_command_is_a_conflict_outside_its_stages(
    command: type[cmd.Command], stage: str
) -> None:
    fields, valid = STAGE_RULES[command]
    case = at_stage(stage)
    before = case.state

    if stage in valid:
        case.do(command, **fields)
        assert case.state.version == before.version + 1
    else:
        with pytest.raises(Conflict, match=f"the referral is at {stage.replace('_', ' ')}"):
            case.do(command, **fields)
        assert case.state is before


# --- versions and request ids --------------------------------------------------------------


def test_a_stale_expected_version_is_a_conflict() -> None:
    case = at_stage("supported")
    seen = case.state.version - 1

    with pytest.raises(Conflict, match=f"you saw version {seen}, it is now {seen + 1}"):
        case.do(cmd.RecordCheckin, on_track=True, expected_version=seen)

    assert case.state.episode.deadlines.get("midpoint_checkin") is not None


def test_the_current_expected_version_is_accepted() -> None:
    case = at_stage("supported")
    version = case.state.version

    case.do(cmd.RecordCheckin, on_track=True, expected_version=version)

    assert case.state.version == version + 1


def test_a_repeated_request_id_changes_nothing_and_keeps_the_version() -> None:
    case = at_stage("triage")
    accept = case.command(cmd.AcceptReferral, request_id="req-accept")
    case.send(accept)
    after_first = case.state

    decision = case.send(accept)

    assert decision.events == []
    assert decision.state is after_first
    assert (case.state.version, case.stage) == (2, "contacting")
    assert case.state.seen_requests["req-accept"] == 2


def test_a_repeated_request_id_is_not_checked_against_the_stage_or_version() -> None:
    case = at_stage("triage")
    accept = case.command(cmd.AcceptReferral, request_id="req-accept", expected_version=1)
    case.send(accept)
    case.do(cmd.RecordContactAttempt, outcome="contacted")

    decision = case.send(accept)  # stage and version have both moved on since

    assert decision.events == [] and case.stage == "assessment"


def test_deciding_never_changes_the_state_it_was_given() -> None:
    case = at_stage("supported")
    before = case.state.model_copy(deep=True)

    rules.decide(case.state, case.command(cmd.RecordCheckin, on_track=True), case.ctx())
    with pytest.raises(Conflict):
        rules.decide(case.state, case.command(cmd.AcceptReferral), case.ctx())
    rules.apply_fact(case.state, session(case.handoff(), date(2027, 1, 20)), case.ctx())
    rules.deadline(case.state, "review", case.ctx())

    assert case.state == before


def test_an_overdue_disengagement_survives_a_new_cycle_once_and_one_recording_clears_it() -> None:
    case = at_stage("supported")
    handoff = case.handoff()
    fire(case, "disengagement")
    case.at(case.state.episode.deadlines["review"]).do(cmd.RecordReview, decision="new_plan")
    case.do(cmd.AgreePlan, goal_count=1, prescriptions=[prescription("prov-b")])

    # Still overdue, so the new plan does not arm a second clock beside it.
    assert "disengagement" not in case.state.episode.deadlines
    assert case.state.episode.overdue.count("disengagement") == 1
    case.fact(session(handoff, case.now.date()))

    assert "disengagement" not in case.state.episode.overdue
