"""The pathway's business rules: pure functions of (state, message) returning the new
state and the events it raises. No Temporal, no I/O: tests call them directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pathway import commands as cmd
from pathway.rules import casework, deadlines, intake, providers
from pathway.rules.base import Conflict, Context, Decision, Rejected
from pathway.state import CaseState, remember_event, remember_request

__all__ = [
    "Conflict",
    "Context",
    "Decision",
    "Rejected",
    "apply_fact",
    "deadlines",
    "decide",
    "intake",
]

_COMMANDS: dict[type[cmd.Command], Callable[[CaseState, Any, Context], Decision]] = {
    cmd.AcceptReferral: intake.accept,
    cmd.DeclineReferral: intake.decline,
    cmd.AssignLinkWorker: intake.assign,
    cmd.RecordContactAttempt: intake.contact_attempt,
    cmd.ReEnter: intake.reenter,
    cmd.EndEpisode: intake.end_episode,
    cmd.WithdrawConsent: intake.withdraw_consent,
    cmd.GiveConsent: intake.give_consent,
    cmd.RescheduleDeadline: intake.reschedule,
    cmd.RecordAssessment: casework.assessment,
    cmd.AgreePlan: casework.agree_plan,
    cmd.RecordCheckin: casework.checkin,
    cmd.RecordReview: casework.review,
    cmd.RecordFollowup: casework.followup,
}


def is_duplicate(state: CaseState, command: cmd.Command) -> bool:
    return command.request_id in state.seen_requests


def decide(state: CaseState, command: cmd.Command, ctx: Context) -> Decision:
    """Apply a link worker's command to a copy of the state, or raise ``Rejected``.

    A repeated request id changes nothing (the update may be delivered twice around
    continue-as-new); a stale ``expected_version`` is rejected (optimistic concurrency).
    """
    if is_duplicate(state, command):
        return Decision(state)
    if command.expected_version is not None and command.expected_version != state.version:
        raise Conflict(
            f"the referral has changed since you read it (you saw version "
            f"{command.expected_version}, it is now {state.version}); reload and try again"
        )
    decision = _COMMANDS[type(command)](state.model_copy(deep=True), command, ctx)
    decision.state.version += 1
    remember_request(decision.state, command.request_id)
    return decision


def apply_fact(state: CaseState, fact: cmd.PartnerFact, ctx: Context) -> Decision:
    """Apply a provider's fact, once per event id; unknown handoffs change nothing."""
    if fact.event_id in state.seen_events:
        return Decision(state)
    copy = state.model_copy(deep=True)
    rule = providers.responded if isinstance(fact, cmd.ProviderResponded) else providers.attendance
    decision = rule(copy, fact, ctx)  # type: ignore[arg-type]
    if decision.events or decision.state.episode != state.episode:
        decision.state.version += 1
    remember_event(decision.state, fact.event_id)
    return decision


def deadline(state: CaseState, name: str, ctx: Context) -> Decision:
    decision = deadlines.reached(state.model_copy(deep=True), name, ctx)
    if decision.events:
        decision.state.version += 1
    return decision
