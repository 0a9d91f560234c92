"""The pathway's business rules: pure functions of (state, message) returning the new
state and the events it raises. No Temporal, no I/O: tests call them directly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pathway import commands as cmd
from pathway.rules import (
    activity,
    casework,
    completion,
    deadlines,
    handoffs,
    intake,
    providers,
)
from pathway.rules.base import Conflict, Context, Decision, Rejected
from pathway.state import CaseState, remember_event, remember_request

__all__ = [
    "BY_COMMAND",
    "COMMANDS",
    "CommandSpec",
    "Conflict",
    "Context",
    "Decision",
    "Rejected",
    "apply_fact",
    "deadlines",
    "decide",
    "intake",
]


@dataclass(frozen=True)
class CommandSpec:
    """One casework command: its model, the rule that decides it, the name of the
    workflow update that carries it (histories record it: never rename one), and the
    HTTP route that sends it (``POST /referrals/{referral_id}/<path>``)."""

    command: type[cmd.Command]
    rule: Callable[[CaseState, Any, Context], Decision]
    update: str
    path: str
    summary: str


# The one table of commands. The rule dispatch below, the workflow's updates and
# validators (``workflows.referral``) and the HTTP routes (``api.commands``) are all built
# from it; adding a command means its model, its rule, its event if any, and one row here.
COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        cmd.AcceptReferral,
        intake.accept,
        "accept_referral",
        "accept",
        "Triage: accept the referral",
    ),
    CommandSpec(
        cmd.DeclineReferral,
        intake.decline,
        "decline_referral",
        "decline",
        "Triage: decline, with a reason code",
    ),
    CommandSpec(
        cmd.AssignLinkWorker,
        intake.assign,
        "assign_link_worker",
        "link-worker",
        "Assign or reassign a link worker",
    ),
    CommandSpec(
        cmd.RecordContactAttempt,
        intake.contact_attempt,
        "record_contact_attempt",
        "contact-attempts",
        "Record a contact attempt",
    ),
    CommandSpec(
        cmd.RecordAssessment,
        casework.assessment,
        "record_assessment",
        "assessment",
        "Record the assessment and baseline measures",
    ),
    CommandSpec(
        cmd.AgreePlan,
        casework.agree_plan,
        "agree_plan",
        "plan",
        "Agree or revise the plan (prescriptions become handoffs)",
    ),
    CommandSpec(
        cmd.RecordCheckin,
        casework.checkin,
        "record_checkin",
        "checkin",
        "Record the mid-point check-in",
    ),
    CommandSpec(
        cmd.RecordReview,
        casework.review,
        "record_review",
        "review",
        "Record the review, its measures and decision",
    ),
    CommandSpec(
        cmd.RecordFollowup,
        casework.followup,
        "record_followup",
        "followup",
        "Record the sustained-outcome follow-up",
    ),
    CommandSpec(
        cmd.ReEnter,
        intake.reenter,
        "reenter",
        "reenter",
        "The person comes back: a new episode",
    ),
    CommandSpec(
        cmd.EndEpisode,
        intake.end_episode,
        "end_episode",
        "end-episode",
        "End the episode (the case stays, dormant)",
    ),
    CommandSpec(
        cmd.WithdrawConsent,
        intake.withdraw_consent,
        "withdraw_consent",
        "consent/withdraw",
        "Withdraw consent to share (cancels open handoffs)",
    ),
    CommandSpec(
        cmd.GiveConsent,
        intake.give_consent,
        "give_consent",
        "consent/give",
        "Give consent to share again",
    ),
    CommandSpec(
        cmd.RescheduleDeadline,
        intake.reschedule,
        "reschedule_deadline",
        "deadlines",
        "Reschedule a due date",
    ),
    CommandSpec(
        cmd.CancelHandoff,
        handoffs.cancel,
        "cancel_handoff",
        "handoffs/cancel",
        "Cancel one live handoff, with a reason code",
    ),
    CommandSpec(
        cmd.RecordCompletionReport,
        completion.record,
        "record_completion_report",
        "completion-report",
        "Record the ended episode's completion report and ongoing plan",
    ),
    CommandSpec(
        cmd.RecordSignpostCheck,
        casework.signpost_check,
        "record_signpost_check",
        "signpost-check",
        "Record the signpost check that ends a level 1 signposting plan",
    ),
    CommandSpec(
        cmd.LogActivity,
        activity.log,
        "log_activity",
        "activities",
        "Log a contact or session with, or on behalf of, the person",
    ),
    CommandSpec(
        cmd.CorrectActivity,
        activity.correct,
        "correct_activity",
        "activities/correct",
        "Correct a logged activity (a new fact; the latest counts)",
    ),
    CommandSpec(
        cmd.DeleteActivity,
        activity.delete,
        "delete_activity",
        "activities/delete",
        "Delete a logged activity, with a reason code",
    ),
)
BY_COMMAND: dict[type[cmd.Command], CommandSpec] = {spec.command: spec for spec in COMMANDS}


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
    decision = BY_COMMAND[type(command)].rule(state.model_copy(deep=True), command, ctx)
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
    changed = decision.state.episode != state.episode
    if changed and isinstance(fact, cmd.AttendanceRecorded):
        # Reporting reads attendance (and its corrections) from the lifecycle topic. Only
        # a report that changed the episode raises it, so the version moves (and the
        # activity runs) exactly when it did before; its id comes from the fact's, so no
        # random id is drawn and histories replay with the ids they had.
        decision.events.append(providers.attendance_recorded(decision.state, fact))
    if decision.events or changed:
        decision.state.version += 1
    remember_event(decision.state, fact.event_id)
    return decision


def deadline(state: CaseState, name: str, ctx: Context) -> Decision:
    decision = deadlines.reached(state.model_copy(deep=True), name, ctx)
    if decision.events:
        decision.state.version += 1
    return decision
