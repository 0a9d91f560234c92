"""Casework as link workers do it: the activity and time log, structured goals, mid-point
measures, and the level 1 signposting path with per-level durations. Pure rules."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from events import referral as ev
from events.casework import (
    ActivityCorrected,
    ActivityDeleted,
    ActivityLogged,
    GoalsUpdated,
    SignpostChecked,
    Signposted,
)
from events.completion import CompletionReported
from pathway import commands as cmd
from pathway.durations import add
from pathway.rules import Conflict, Rejected
from tests.unit.pathway_fixtures import (
    T0,
    WEMWBS_HIGH,
    Case,
    at_stage,
    config,
    measure,
    only,
    prescription,
    types,
    wemwbs,
)

MYCAW_BEFORE = {"concern_1": 5, "concern_2": 5, "wellbeing": 4}  # profile 4.67
MYCAW_MID = {"concern_1": 3, "concern_2": 4, "wellbeing": 3}  # profile 3.33: -1.33
LEVEL1 = {"1": {"signposting_only": True, "check_after": "2 weeks"}}


def log(case: Case, **fields: object) -> cmd.LogActivity:
    values = {
        "activity_type": "phone",
        "direct": True,
        "started_at": case.now - timedelta(hours=1),
        "minutes": 25,
        **fields,
    }
    return case.command(cmd.LogActivity, **values)


# --- the activity and time log -------------------------------------------------------------


def test_logging_an_activity_raises_it_with_the_actor_as_who_and_no_note_text() -> None:
    case = at_stage("supported")
    command = log(case, activity_type="home_visit", minutes=55, note_id="note-7")

    decision = case.send(command)

    logged = only(decision, ActivityLogged)
    assert logged.activity_id == command.request_id
    assert (logged.link_worker_id, logged.activity_type, logged.direct, logged.minutes) == (
        "lw-1",
        "home_visit",
        True,
        55,
    )
    assert logged.note_recorded is True
    assert "note-7" not in logged.model_dump_json()
    assert case.state.activities == {command.request_id: 1}


def test_an_activity_can_be_logged_for_another_link_worker_and_on_a_dormant_case() -> None:
    case = at_stage("dormant")

    decision = case.send(log(case, link_worker_id="lw-9", direct=False, activity_type="admin"))

    logged = only(decision, ActivityLogged)
    assert (logged.link_worker_id, logged.direct, logged.stage) == ("lw-9", False, "dormant")


def test_a_repeated_log_request_changes_nothing() -> None:
    case = at_stage("supported")
    command = log(case)
    case.send(command)
    version = case.state.version

    again = case.send(command)

    assert again.events == [] and case.state.version == version


@pytest.mark.parametrize(
    ("started", "message"),
    [
        (timedelta(hours=2), "in the future"),
        (-timedelta(days=30), "before the case was opened"),
    ],
)
def test_an_activity_outside_the_case_s_time_is_rejected(started: timedelta, message: str) -> None:
    case = at_stage("supported")
    with pytest.raises(Rejected, match=message):
        case.send(log(case, started_at=case.now + started if started.days >= 0 else T0 + started))


def test_a_correction_repeats_every_field_and_a_deletion_stops_further_changes() -> None:
    case = at_stage("supported")
    first = log(case)
    case.send(first)

    corrected = only(
        case.do(
            cmd.CorrectActivity,
            activity_id=first.request_id,
            activity_type="one_to_one",
            direct=True,
            started_at=first.started_at,
            minutes=50,
        ),
        ActivityCorrected,
    )
    deleted = only(
        case.do(cmd.DeleteActivity, activity_id=first.request_id, reason_code="logged_in_error"),
        ActivityDeleted,
    )

    assert (corrected.activity_id, corrected.minutes, corrected.activity_type) == (
        first.request_id,
        50,
        "one_to_one",
    )
    assert (deleted.activity_id, deleted.reason_code) == (first.request_id, "logged_in_error")
    with pytest.raises(Conflict, match="no activity"):
        case.do(cmd.DeleteActivity, activity_id=first.request_id, reason_code="again")


def test_correcting_an_activity_never_logged_is_a_conflict() -> None:
    case = at_stage("supported")
    with pytest.raises(Conflict, match="no activity unknown-1"):
        case.do(
            cmd.CorrectActivity,
            activity_id="unknown-1",
            activity_type="text",
            direct=False,
            started_at=case.now,
            minutes=5,
        )


# --- structured goals ----------------------------------------------------------------------


def planned_with_goals(**cfg: object) -> Case:
    case = at_stage("planning", cfg=config(**cfg) if cfg else None)
    case.do(
        cmd.AgreePlan,
        goals=[
            cmd.GoalInput(
                category="family_friends", words_note_id="n-1", target_date=date(2027, 3, 1)
            ),
            cmd.GoalInput(category="housing"),
        ],
        prescriptions=[prescription()],
    )
    return case


def test_a_plan_holds_its_goals_and_raises_them_without_the_person_s_words() -> None:
    case = planned_with_goals()

    ep = case.state.episode
    assert ep.goal_count == 2
    assert [(g.number, g.category, g.status) for g in ep.goals] == [
        (1, "family_friends", "not_started"),
        (2, "housing", "not_started"),
    ]
    event = [e for _, e in case.events if isinstance(e, GoalsUpdated)][-1]
    assert event.phase == "plan"
    assert [(g.goal, g.words_recorded) for g in event.goals] == [(1, True), (2, False)]
    assert "n-1" not in event.model_dump_json()
    plan = [e for _, e in case.events if isinstance(e, ev.PlanAgreed)][-1]
    assert plan.goal_count == 2


def test_a_goal_count_alone_still_agrees_a_plan_of_unspecified_goals() -> None:
    case = at_stage("planning")
    decision = case.do(cmd.AgreePlan, goal_count=3)
    assert [g.category for g in case.state.episode.goals] == ["unspecified"] * 3
    assert GoalsUpdated not in types(decision)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"goals": [cmd.GoalInput(category="astrology")]}, "category must be one of"),
        ({"goal_count": 2, "goals": [cmd.GoalInput(category="money")]}, "goal_count is 2"),
        ({}, "a plan needs its goals"),
    ],
)
def test_bad_goals_are_rejected(fields: dict[str, object], message: str) -> None:
    case = at_stage("planning")
    with pytest.raises(Rejected, match=message):
        case.do(cmd.AgreePlan, **fields)


def test_the_commissioner_s_own_goal_categories_are_accepted() -> None:
    case = at_stage("planning", cfg=config(goal_categories=("digital_skills",)))
    case.do(cmd.AgreePlan, goals=[cmd.GoalInput(category="digital_skills")])
    assert case.state.episode.goals[0].category == "digital_skills"


def test_goals_move_at_check_in_and_their_attainment_is_recorded_at_review() -> None:
    case = planned_with_goals()
    case.later(days=40).do(
        cmd.RecordCheckin, on_track=True, goals=[cmd.GoalUpdate(goal=1, status="in_progress")]
    )
    case.at(case.state.episode.deadlines["review"])

    decision = case.do(
        cmd.RecordReview,
        decision="dormant",
        goals=[
            cmd.GoalUpdate(goal=1, status="achieved"),
            cmd.GoalUpdate(goal=2, status="dropped"),
        ],
    )

    updated = only(decision, GoalsUpdated)
    assert updated.phase == "review"
    assert [(g.goal, g.status, g.at_review) for g in updated.goals] == [
        (1, "achieved", "achieved"),
        (2, "dropped", "dropped"),
    ]
    report = only(case.do(cmd.RecordCompletionReport), CompletionReported)
    assert [(g.goal, g.achieved, g.category) for g in report.goals] == [
        (1, "achieved", "family_friends"),
        (2, "not_achieved", "housing"),
    ]


def test_a_goal_number_outside_the_plan_is_rejected() -> None:
    case = planned_with_goals()
    with pytest.raises(Rejected, match="numbered 1 to 2"):
        case.do(
            cmd.RecordCheckin, on_track=False, goals=[cmd.GoalUpdate(goal=3, status="achieved")]
        )


# --- mid-point measures and MYCAW ----------------------------------------------------------


def test_the_mid_point_check_in_carries_measures_compared_with_the_baseline() -> None:
    case = at_stage("supported", baseline=[wemwbs(), measure("MYCAW", MYCAW_BEFORE)])

    decision = case.later(days=42).do(
        cmd.RecordCheckin,
        on_track=True,
        measures=[wemwbs(WEMWBS_HIGH), measure("MYCAW", MYCAW_MID)],
    )

    checkin = only(decision, ev.CheckinRecorded)
    assert [m.instrument for m in checkin.measures] == ["WEMWBS", "MYCAW"]
    assert sorted(checkin.improved_instruments) == ["MYCAW", "WEMWBS"]
    assert checkin.measures[1].raw["profile"] == 3.33
    assert sorted(case.state.episode.midpoint_measures) == ["MYCAW", "WEMWBS"]


def test_mycaw_with_one_concern_is_scored_and_compared_and_keeps_its_concerns() -> None:
    one = {"concern_1": 5, "wellbeing": 4}  # profile 4.5
    case = at_stage("supported", baseline=[measure("MYCAW", one)])
    decision = case.later(days=42).do(
        cmd.RecordCheckin,
        on_track=True,
        measures=[measure("MYCAW", {"concern_1": 3, "wellbeing": 4})],  # profile 3.5: -1
    )
    checkin = only(decision, ev.CheckinRecorded)
    assert checkin.improved_instruments == ["MYCAW"]
    assert checkin.measures[0].raw == {"concern_1": 3, "wellbeing": 4, "profile": 3.5}

    two = at_stage("supported", baseline=[measure("MYCAW", MYCAW_BEFORE)])
    with pytest.raises(Rejected, match="MYCAW concern_2 was scored at the baseline"):
        two.later(days=42).do(
            cmd.RecordCheckin,
            on_track=True,
            measures=[measure("MYCAW", {"concern_1": 3, "wellbeing": 4})],
        )


def test_a_mid_point_measure_without_a_baseline_is_rejected() -> None:
    case = at_stage("supported")
    with pytest.raises(Rejected, match="MYCAW has no baseline"):
        case.do(cmd.RecordCheckin, on_track=True, measures=[measure("MYCAW", MYCAW_MID)])


def test_the_completion_report_shows_the_mid_point_beside_baseline_and_review() -> None:
    case = at_stage("supported")
    case.later(days=42).do(cmd.RecordCheckin, on_track=True, measures=[wemwbs(WEMWBS_HIGH)])
    case.at(case.state.episode.deadlines["review"])
    case.do(cmd.RecordReview, decision="dormant", measures=[wemwbs(WEMWBS_HIGH)])

    report = only(case.do(cmd.RecordCompletionReport), CompletionReported)

    change = report.measures[0]
    assert change.midpoint is not None and change.midpoint.raw == {"total": 42}
    assert (change.improved_at_midpoint, change.improved_at_review) == (True, True)


# --- level 1: information and signposting, the short path ----------------------------------


def signposting(level: str = "1") -> Case:
    case = at_stage("assessment", cfg=config(levels=LEVEL1))
    case.do(cmd.RecordAssessment, support_level=level, measures=[wemwbs()])
    return case


def test_a_level_1_plan_signposts_without_handoffs_and_sets_only_the_check() -> None:
    case = signposting()

    decision = case.do(
        cmd.AgreePlan,
        goal_count=1,
        signposts=[
            cmd.SignpostInput(category="benefits_advice", service_id="citizens-advice"),
            cmd.SignpostInput(category="community_transport", note_id="note-3"),
        ],
    )

    ep = case.state.episode
    assert (ep.path, ep.stage, ep.handoffs) == ("signposting", "supported", {})
    assert ep.deadlines == {"review": add(case.now, "2 weeks")}
    signposted = only(decision, Signposted)
    assert [s.service_id for s in signposted.signposts] == ["citizens-advice", None]
    assert signposted.check_due == ep.deadlines["review"]


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"prescriptions": [prescription()]}, Conflict, "information and signposting only"),
        ({}, Rejected, "at least one signpost"),
        ({"signposts": [cmd.SignpostInput(category="x")]}, Rejected, "service_id, or a note_id"),
    ],
)
def test_a_level_1_plan_refuses_handoffs_and_bare_signposts(
    fields: dict[str, object], error: type[Exception], message: str
) -> None:
    case = signposting()
    with pytest.raises(error, match=message):
        case.do(cmd.AgreePlan, goal_count=1, **fields)


def signposted() -> Case:
    case = signposting()
    case.do(
        cmd.AgreePlan,
        goal_count=1,
        signposts=[cmd.SignpostInput(category="walking", service_id="walks")],
    )
    return case


def test_the_signpost_check_ends_the_short_path_instead_of_a_review() -> None:
    case = signposted()
    due = case.at(case.state.episode.deadlines["review"]).deadline("review")
    # The short path's check is due under its own name (the review deadline carries it).
    assert only(due, ev.ActionDue).action == "signpost_check"
    with pytest.raises(Conflict, match="ends with the signpost check"):
        case.do(cmd.RecordReview, decision="dormant")

    decision = case.do(cmd.RecordSignpostCheck, outcome="connected")

    assert only(decision, SignpostChecked).outcome == "connected"
    ep = case.state.episode
    assert (ep.stage, ep.dormant_reason, ep.deadlines, ep.overdue) == (
        "dormant",
        "review_complete",
        {},
        [],
    )
    assert case.state.summary().path == "signposting"


def test_needing_more_support_moves_the_person_to_a_fuller_level_and_the_full_path() -> None:
    case = signposted()

    case.later(days=3).do(cmd.RecordSignpostCheck, outcome="needs_more_support", support_level="2")
    ep = case.state.episode
    assert (ep.stage, ep.support_level, ep.path) == ("planning", "2", "full")

    case.do(cmd.AgreePlan, goal_count=1, prescriptions=[prescription()])
    assert sorted(name.partition(":")[0] for name in case.state.episode.deadlines) == [
        "disengagement",
        "midpoint_checkin",
        "provider_response",
        "review",
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"outcome": "needs_more_support"}, "give support_level, one of 2, 3"),
        ({"outcome": "needs_more_support", "support_level": "1"}, "one of 2, 3"),
        ({"outcome": "connected", "support_level": "2"}, "only given with needs_more_support"),
    ],
)
def test_bad_signpost_checks_are_rejected(fields: dict[str, object], message: str) -> None:
    case = signposted()
    with pytest.raises(Rejected, match=message):
        case.do(cmd.RecordSignpostCheck, **fields)


def test_the_signpost_check_does_not_apply_to_a_full_plan() -> None:
    case = at_stage("supported")
    with pytest.raises(Conflict, match="on the full path"):
        case.do(cmd.RecordSignpostCheck, outcome="connected")


def test_a_level_sets_its_own_durations() -> None:
    levels = {**LEVEL1, "3": {"review_after": "4 months", "midpoint_checkin_after": "8 weeks"}}
    case = at_stage("assessment", cfg=config(levels=levels))
    case.do(cmd.RecordAssessment, support_level="3", measures=[wemwbs()])

    case.do(cmd.AgreePlan, goal_count=1)

    deadlines = case.state.episode.deadlines
    assert deadlines["review"] == add(case.now, "4 months")
    assert deadlines["midpoint_checkin"] == add(case.now, "8 weeks")


def test_a_profile_cannot_configure_a_level_it_does_not_have() -> None:
    with pytest.raises(ValueError, match="unknown support levels: 4"):
        config(levels={"4": {"signposting_only": True}})
