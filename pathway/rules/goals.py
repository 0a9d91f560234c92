"""Structured goals: a plan's goals, their status at check-in and review, and their
attainment at the review and the sustained-outcome follow-up.

A goal's category is a Well-being Star area or one of the commissioner's
``goal_categories``; what the person wants, in their own words, is a case note in the
personal-data store and travels only as its id. A plan agreed with a goal count only
(before structured goals) has that many goals of category ``unspecified``.
"""

from __future__ import annotations

from typing import Literal

from events.casework import GoalState, GoalsUpdated
from pathway import commands as cmd
from pathway.measures import default_registry
from pathway.rules.base import Context, Decision, Rejected, lifecycle
from pathway.state import CaseState, Goal

UNSPECIFIED = "unspecified"
# Where attainment is recorded: the goal's status then is kept beside its current one.
ATTAINMENT = ("review", "followup")


def categories(state: CaseState) -> list[str]:
    return [*default_registry().get("STAR").items, *state.config.goal_categories]


def from_plan(state: CaseState, c: cmd.AgreePlan) -> list[Goal]:
    """The plan's goals, checked; a count-only plan gets that many unspecified ones."""
    if c.goals:
        if c.goal_count is not None and c.goal_count != len(c.goals):
            raise Rejected(
                f"goal_count is {c.goal_count} but {len(c.goals)} goals were given; "
                "give the goals alone"
            )
        allowed = categories(state)
        for goal in c.goals:
            if goal.category not in allowed:
                raise Rejected(f"a goal's category must be one of: {', '.join(allowed)}")
        return [Goal(number=n, **goal.model_dump()) for n, goal in enumerate(c.goals, start=1)]
    if c.goal_count is None:
        raise Rejected("a plan needs its goals (or, as before, a goal_count)")
    return [Goal(number=n, category=UNSPECIFIED) for n in range(1, c.goal_count + 1)]


def update(
    state: CaseState,
    updates: list[cmd.GoalUpdate],
    phase: Literal["checkin", "review", "followup"],
    decision: Decision,
    ctx: Context,
) -> None:
    """Apply the status updates; at a review or follow-up record every goal's attainment.
    Raises an event when anything about the goals was said."""
    ep = state.episode
    numbers = [u.goal for u in updates]
    if len(set(numbers)) != len(numbers) or any(n > len(ep.goals) for n in numbers):
        raise Rejected(f"goals are numbered 1 to {len(ep.goals)} in this plan, each once")
    for u in updates:
        ep.goals[u.goal - 1].status = u.status
    if phase in ATTAINMENT:
        for goal in ep.goals:
            setattr(goal, f"at_{phase}", goal.status)
    structured = any(goal.category != UNSPECIFIED for goal in ep.goals)
    if updates or (phase in ATTAINMENT and structured):
        emit(state, phase, decision, ctx)


def emit(
    state: CaseState,
    phase: Literal["plan", "checkin", "review", "followup"],
    decision: Decision,
    ctx: Context,
) -> None:
    ep = state.episode
    decision.emit(
        ctx,
        lifecycle(
            state,
            ctx,
            GoalsUpdated,
            phase=phase,
            plan_version=max(ep.plan_version, 1),
            goals=[snapshot(g) for g in ep.goals],
        ),
    )


def snapshot(goal: Goal) -> GoalState:
    return GoalState(
        goal=goal.number,
        category=goal.category,
        target_date=goal.target_date,
        status=goal.status,
        at_review=goal.at_review,
        at_followup=goal.at_followup,
        words_recorded=goal.words_note_id is not None,
    )
