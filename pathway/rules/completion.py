"""The completion report and ongoing plan, recorded by the link worker when an episode
has ended. The pathway drafts what it knows (the measures at baseline, mid-point, review
and follow-up with their changes, the services used and sessions attended, and each
structured goal's attainment at the review and follow-up); the link worker may say how
each goal went instead, and adds the ongoing plan (codes) and, by reference, the
person's own words (a case note in the personal-data store). Recording it again
replaces it. The link worker may record it as a draft first (gone over with the person,
recorded again as often as needed) and then final; a final report is never turned back
into a draft, only recorded again final, and only a final one states completion."""

from __future__ import annotations

from events.completion import CompletionReported, GoalResult, MeasureChange, ServiceUsed
from pathway import commands as cmd
from pathway.rules import outcomes
from pathway.rules.base import Conflict, Context, Decision, Rejected, lifecycle, scores
from pathway.rules.goals import UNSPECIFIED
from pathway.state import CaseState, Episode, Goal

# A goal's attainment as the report states it, from its status at the last measurement.
ACHIEVED = {"achieved": "achieved", "partly_achieved": "partly_achieved"}


def record(state: CaseState, c: cmd.RecordCompletionReport, ctx: Context) -> Decision:
    ep = state.episode
    if ep.stage != "dormant" or ep.first_plan_at is None:
        raise Conflict(
            "a completion report is recorded once the episode has ended, after a plan was "
            f"agreed (episode {ep.number} is at {ep.stage.replace('_', ' ')}"
            f"{'' if ep.first_plan_at else ', with no plan'})"
        )
    numbers = [g.goal for g in c.goals]
    if len(set(numbers)) != len(numbers) or any(n > ep.goal_count for n in numbers):
        raise Rejected(
            f"goals are numbered 1 to {ep.goal_count} (the plan's goal_count), each once"
        )
    previous = ep.completion_report
    if previous is not None and previous.status == "final" and c.status == "draft":
        raise Conflict(
            f"episode {ep.number}'s completion report is final; record it again as final "
            "to correct it"
        )
    ep.own_words_note_id = c.own_words_note_id
    report = lifecycle(
        state,
        ctx,
        CompletionReported,
        report_version=previous.report_version + 1 if previous else 1,
        status=c.status,
        ended_reason=ep.dormant_reason,
        goal_count=ep.goal_count,
        goals=_goal_results(ep, c),
        measures=measure_changes(ep),
        services=[
            ServiceUsed(
                handoff_id=h.handoff_id,
                provider_id=h.provider_id,
                service_id=h.service_id,
                status=h.status,
                sessions_attended=h.attended,
                delivered_code=h.delivered_code,
            )
            for h in ep.handoffs.values()
        ],
        attended_sessions=ep.attended_sessions,
        ongoing_plan=list(c.ongoing_plan),
        own_words_recorded=c.own_words_note_id is not None,
    )
    ep.completion_report = report
    decision = Decision(state)
    report_id = decision.emit(ctx, report)
    if report.status == "final":  # a draft is not yet the evidence a payment rests on
        outcomes.completion(state, decision, ctx, report, report_id)
    return decision


def _goal_results(ep: Episode, c: cmd.RecordCompletionReport) -> list[GoalResult]:
    """The link worker's account of each goal, or, if they give none, the attainment the
    structured goals recorded at the review and follow-up."""
    if c.goals:
        return [
            GoalResult(goal=g.goal, achieved=g.achieved, **_structured(ep, g.goal))
            for g in sorted(c.goals, key=_goal)
        ]
    return [
        GoalResult(
            goal=goal.number,
            achieved=ACHIEVED.get(goal.at_followup or goal.at_review or "", "not_achieved"),
            **_structured(ep, goal.number),
        )
        for goal in ep.goals
        if goal.category != UNSPECIFIED and (goal.at_review or goal.at_followup)
    ]


def _structured(ep: Episode, number: int) -> dict[str, str | None]:
    goal: Goal | None = ep.goals[number - 1] if number <= len(ep.goals) else None
    if goal is None or goal.category == UNSPECIFIED:
        return {}  # a goal of a count-only plan: nothing was said about it but its number
    return {"category": goal.category, "at_review": goal.at_review, "at_followup": goal.at_followup}


def measure_changes(ep: Episode) -> list[MeasureChange]:
    at_midpoint = outcomes.compare(ep.baseline, ep.midpoint_measures)
    at_review = outcomes.compare(ep.baseline, ep.review_measures)
    at_followup = outcomes.compare(ep.baseline, ep.followup_measures)
    codes = sorted(
        {*ep.baseline, *ep.midpoint_measures, *ep.review_measures, *ep.followup_measures}
    )
    return [
        MeasureChange(
            instrument=code,
            baseline=scores(ep.baseline[code]) if code in ep.baseline else None,
            midpoint=scores(ep.midpoint_measures[code]) if code in ep.midpoint_measures else None,
            improved_at_midpoint=at_midpoint[code][1] if code in at_midpoint else None,
            review=scores(ep.review_measures[code]) if code in ep.review_measures else None,
            followup=scores(ep.followup_measures[code]) if code in ep.followup_measures else None,
            improved_at_review=at_review[code][1] if code in at_review else None,
            improved_at_followup=at_followup[code][1] if code in at_followup else None,
        )
        for code in codes
    ]


def _goal(g: cmd.GoalOutcome) -> int:
    return g.goal
