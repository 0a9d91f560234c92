"""The completion report: recorded once the episode has ended after a plan; drafted from
what the pathway knows (measures and their changes, services and sessions), completed by
the link worker (goals, ongoing plan, a reference to the person's own words); an event
with pseudonymous content only."""

from __future__ import annotations

from datetime import date

import pytest

from events.completion import CompletionReported
from pathway import commands as cmd
from pathway import rules
from tests.unit.pathway_fixtures import WEMWBS_HIGH, at_stage, only, responded, session, wemwbs


def _ended_after_support():  # type: ignore[no-untyped-def]
    case = at_stage("review")
    h = case.handoff()
    case.fact(responded(h, "accept", "e-accept"))
    case.fact(session(h, date(2027, 2, 1)))
    case.fact(
        responded(h, "complete", "e-done").model_copy(
            update={"delivered_code": "course_completed", "sessions_delivered": 1}
        )
    )
    case.do(cmd.RecordReview, decision="dormant", measures=[wemwbs(WEMWBS_HIGH)])
    return case


def test_the_report_is_drafted_from_the_episode_and_completed_by_the_link_worker() -> None:
    case = _ended_after_support()
    decision = case.do(
        cmd.RecordCompletionReport,
        goals=[
            cmd.GoalOutcome(goal=2, achieved="partly_achieved"),
            cmd.GoalOutcome(goal=1, achieved="achieved"),
        ],
        ongoing_plan=["self_managing"],
        own_words_note_id="note-1",
    )

    report = only(decision, CompletionReported)
    assert (report.report_version, report.ended_reason, report.goal_count) == (
        1,
        "review_complete",
        2,
    )
    assert [(g.goal, g.achieved) for g in report.goals] == [(1, "achieved"), (2, "partly_achieved")]
    (wemwbs_change,) = report.measures
    assert wemwbs_change.instrument == "WEMWBS" and wemwbs_change.improved_at_review is True
    assert wemwbs_change.followup is None and wemwbs_change.improved_at_followup is None
    (service,) = report.services
    assert (service.status, service.sessions_attended, service.delivered_code) == (
        "completed",
        1,
        "course_completed",
    )
    assert report.own_words_recorded is True
    assert "note-1" not in report.model_dump_json()  # a reference stays in the state only
    assert case.state.episode.own_words_note_id == "note-1"


def test_recording_it_again_replaces_it() -> None:
    case = _ended_after_support()
    case.do(cmd.RecordCompletionReport, ongoing_plan=["self_managing"])
    again = case.do(cmd.RecordCompletionReport, ongoing_plan=["continue_service"])
    assert only(again, CompletionReported).report_version == 2
    assert case.state.episode.completion_report.ongoing_plan == ["continue_service"]


@pytest.mark.parametrize("stage", ["supported", "review"])
def test_no_report_while_the_episode_runs(stage: str) -> None:
    with pytest.raises(rules.Conflict, match="once the episode has ended"):
        at_stage(stage).do(cmd.RecordCompletionReport)


def test_no_report_for_an_episode_without_a_plan() -> None:
    with pytest.raises(rules.Conflict, match="with no plan"):
        at_stage("dormant").do(cmd.RecordCompletionReport)


@pytest.mark.parametrize("goals", [[3], [1, 1]])
def test_goals_are_the_plans_numbered_goals_each_once(goals: list[int]) -> None:
    case = _ended_after_support()
    with pytest.raises(rules.Rejected, match="goals are numbered 1 to 2"):
        case.do(
            cmd.RecordCompletionReport,
            goals=[cmd.GoalOutcome(goal=g, achieved="achieved") for g in goals],
        )


def test_a_draft_is_gone_over_then_finalised_and_a_final_one_stays_final() -> None:
    case = _ended_after_support()
    draft = only(case.do(cmd.RecordCompletionReport, status="draft"), CompletionReported)
    redrafted = only(
        case.do(cmd.RecordCompletionReport, status="draft", ongoing_plan=["self_managing"]),
        CompletionReported,
    )
    final = only(
        case.do(cmd.RecordCompletionReport, ongoing_plan=["self_managing"]), CompletionReported
    )

    assert [(r.status, r.report_version) for r in (draft, redrafted, final)] == [
        ("draft", 1),
        ("draft", 2),
        ("final", 3),
    ]
    with pytest.raises(rules.Conflict, match="is final"):
        case.do(cmd.RecordCompletionReport, status="draft")


def test_only_a_final_report_states_completion() -> None:
    from events.outcome import CompletionAchieved

    case = _ended_after_support()
    drafted = case.do(cmd.RecordCompletionReport, status="draft")
    final = case.do(cmd.RecordCompletionReport)

    assert not [d for _, d in drafted.events if isinstance(d, CompletionAchieved)]
    assert only(final, CompletionAchieved).report_version == 2


def test_the_page_shows_each_goal_s_category_and_own_words_and_the_mid_point() -> None:
    from api.completion_report import render
    from events.completion import GoalResult, MeasureChange
    from events.examples import BASELINE, MIDPOINT, example

    report = example("linkway.referral.completion_reported.v1").model_copy(
        update={
            "goals": [GoalResult(goal=1, achieved="achieved", category="family_friends")],
            "measures": [MeasureChange(instrument="SWEMWBS", baseline=BASELINE, midpoint=MIDPOINT)],
        }
    )
    page = render(report, "Sam", "", {1: "See the <grandchildren>"})
    assert "Goal 1 (family friends): &ldquo;See the &lt;grandchildren&gt;&rdquo;: Achieved" in page
    assert "<th>Mid-point</th>" in page and "<td>23</td>" in page


def test_the_page_shows_the_fund_grants_purposes_and_amounts_never_the_supplier() -> None:
    from api.completion_report import render
    from events.examples import example
    from fund.views import GrantView

    report = example("linkway.referral.completion_reported.v1")
    now = report.occurred_at

    def grant(status: str, amount: int, spent: int, purpose: str, goal: str) -> GrantView:
        return GrantView(
            grant_id=f"g-{purpose}", fund_id="f-1", referral_id="r-1", goal_id="1",
            goal_category=goal,
            partner_id="p-1", purpose=purpose, supplier="Oswestry <Leisure>",
            amount_pence=amount, spent_pence=spent, status=status, requested_by="lw-1",
            decided_by="lw-2", spent_by=None, reason_code=None, requested_at=now,
            updated_at=now,
        )  # fmt: skip

    grants = [
        grant("spent", 4_500, 4_200, "physical_activity", "physical_health"),
        grant("approved", 1_250, 0, "travel", "unspecified"),
    ]
    page = render(report, "Sam", "", None, grants)
    # Each grant names its goal as it was when asked for (a revised plan renumbers goals).
    paid = "<td>physical activity</td><td>Goal 1 (physical health)</td><td>£42.00</td>"
    assert paid + "<td>Paid</td>" in page
    assert "<td>travel</td><td>Goal 1</td><td>£12.50</td><td>Approved</td>" in page
    assert "In all: £54.50" in page
    assert "Leisure" not in page  # the supplier stays with the grant
    assert "Well-being Action Fund" not in render(report, "Sam", "", None, [])
