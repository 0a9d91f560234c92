"""What happens when a deadline passes: the action becomes due on the link worker's
caseload, and a passed review date moves a supported person to review. A provider that
still has not answered ``provider_fail_after_escalation`` after its escalation has its
handoff failed (reason ``no_response``)."""

from __future__ import annotations

from datetime import datetime

from events.referral import ActionDue
from pathway import stages
from pathway.rules import handoffs
from pathway.rules.base import Context, Decision, due, lifecycle
from pathway.state import CaseState


def next_deadline(state: CaseState) -> datetime | None:
    deadlines = state.episode.deadlines
    return min(deadlines.values()) if deadlines else None


def due_now(state: CaseState, now: datetime) -> list[str]:
    return sorted(
        (name for name, at in state.episode.deadlines.items() if at <= now),
        key=lambda name: (state.episode.deadlines[name], name),
    )


def reached(state: CaseState, name: str, ctx: Context) -> Decision:
    ep = state.episode
    decision = Decision(state)
    due_at = ep.deadlines.pop(name, None)
    if due_at is None:
        return decision
    action, _, handoff_id = name.partition(":")
    if action == "provider_failed":
        # Not an action for the link worker: the pathway gives up on the provider.
        handoffs.no_response(state, decision, ctx, handoff_id)
        return decision
    if action == "provider_response" and state.config.provider_fail_after_escalation:
        handoff = ep.handoffs.get(handoff_id)
        if handoff is not None and handoff.status == "requested":
            ep.deadlines[f"provider_failed:{handoff_id}"] = due(
                state, ctx.now, state.config.provider_fail_after_escalation
            )
    if action == "review" and ep.stage in stages.AWAITING_REVIEW:
        ep.stage = "review"
    # Once only: a new plan can schedule an action that is still overdue, and a second
    # entry would outlive the action's being recorded (clear removes one).
    if name not in ep.overdue:
        ep.overdue.append(name)
    decision.emit(
        ctx,
        lifecycle(
            state,
            ctx,
            ActionDue,
            # On the short path the review deadline is the signpost check: say so.
            action="signpost_check" if action == "review" and ep.path == "signposting" else action,
            due_at=due_at,
            handoff_id=handoff_id or None,
        ),
    )
    return decision
