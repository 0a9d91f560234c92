"""One durable workflow per referral (a case), living for years and never closed.

Updates (a link worker's commands; update, not signal, because the caller needs the
validation result), one with its validator per row of ``pathway.rules.COMMANDS``:
accept_referral, decline_referral, assign_link_worker, record_contact_attempt,
record_assessment, agree_plan, record_checkin, record_review, record_followup, reenter,
end_episode, withdraw_consent, give_consent, reschedule_deadline, cancel_handoff,
record_completion_report, record_signpost_check, log_activity, correct_activity,
delete_activity; and confirm_received (read-your-writes when a referral is created).
Signals (partner facts, deduplicated by event id): provider_responded,
attendance_reported. Queries: get_state, get_episodes.

Invariants: every business decision is a pure rule from ``pathway.rules``; a validator
runs the same rule on the current state, so an invalid command is rejected before it
reaches history; handlers change state synchronously and the run loop is the single
writer that persists state and events, in order, one activity per batch; deadlines are
absolute times in state, so they survive continue-as-new. A batch's activity runs in the
trace of the last update or signal that changed it (``workflows.tracing``), not the
workflow's own, so a later command's work is in its request's trace.

Continue-as-new carries the state and any events not yet persisted. The server refuses
continue-as-new while new signals keep landing during the task (temporalio/temporal#1289),
so partner facts must arrive as the inbound consumer sends them, per referral and
applied before more follow, never as an unbroken flood to one workflow.
"""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from events.catalogue import EventData, topic_for
    from pathway import commands as cmd
    from pathway import rules
    from pathway.rules import deadlines, intake
    from pathway.state import CaseState, EpisodeSummary
    from pathway.views import episodes, view
    from workflows import RECORD_TRANSITION, REFERRAL_WORKFLOW
    from workflows.models import (
        CommandResult,
        OutgoingEvent,
        RecordTransitionInput,
        RecordTransitionResult,
        ReferralInput,
    )

    # By name from the module itself: `from workflows import tracing` would load a copy
    # of the module inside the sandbox, whose context variables the worker's interceptor
    # never sets (tests/workflow/test_command_trace_dev_server.py would fail).
    from workflows.tracing import Carrier, caller, persisting_for

PERSIST_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
T = TypeVar("T")


def _with_command_updates(cls: type[T]) -> type[T]:
    """Give the workflow one update and one validator per row of ``rules.COMMANDS``.

    Every command is handled the same way (validate with its rule; decide; wait until
    persisted), so the handlers are made from the table rather than written out fourteen
    times; a test checks that the workflow's updates and the table agree."""
    for spec in rules.COMMANDS:
        setattr(cls, spec.update, _command_update(spec))
    return cls


def _command_update(spec: rules.CommandSpec) -> Any:
    async def handler(self: ReferralWorkflow, command: cmd.Command) -> CommandResult:
        return await self._command(command)

    def validator(self: ReferralWorkflow, command: cmd.Command) -> None:
        self._validate(command)

    handler.__name__ = handler.__qualname__ = spec.update
    # The SDK reads the parameter's type to decode the payload into the command model.
    handler.__annotations__ = {"command": spec.command, "return": CommandResult}
    validator.__annotations__ = {"command": spec.command, "return": None}
    update = workflow.update(name=spec.update)(handler)
    update.validator(validator)
    return update


CommandUpdate = workflow.UpdateMethodMultiParam[[Any, cmd.Command], CommandResult]


def command_update(command: type[cmd.Command]) -> CommandUpdate:
    """The workflow update that carries ``command``: clients call updates by reference."""
    return cast(CommandUpdate, getattr(ReferralWorkflow, rules.BY_COMMAND[command].update))


@workflow.defn(name=REFERRAL_WORKFLOW)
@_with_command_updates
class ReferralWorkflow:
    @workflow.init
    def __init__(self, input: ReferralInput) -> None:
        self._history_limit = input.history_limit
        self._pending: list[OutgoingEvent] = list(input.pending)
        # The trace of the last update or signal whose change is pending, so that the
        # activity persisting it joins that request's trace (``workflows.tracing``). Not
        # state: it is rebuilt on replay from the headers in history, and a batch carried
        # across continue-as-new is persisted in the new run's own trace.
        self._caller: Carrier | None = None
        if input.state is not None:
            self._state = input.state
            self._persisted = input.persisted_version
        else:
            assert input.new is not None, "a ReferralWorkflow starts with a new referral"
            n = input.new
            opened = intake.open_case(
                n.referral_id,
                n.partner_id,
                n.locality,
                n.source,
                n.referrer_org_id,
                n.reason_codes,
                n.consent_to_share,
                n.config,
                self._ctx(),
            )
            self._state = opened.state
            self._pending.extend(_outgoing(event_id, data) for event_id, data in opened.events)
            self._persisted = 0

    @workflow.run
    async def run(self, input: ReferralInput) -> None:
        while True:
            for name in deadlines.due_now(self._state, workflow.now()):
                self._take(rules.deadline(self._state, name, self._ctx()))
            if self._should_continue_as_new():
                await self._continue_as_new()
                continue
            if self._pending or self._state.version > self._persisted:
                await self._persist()
                continue
            await self._sleep_until_next_deadline()

    async def _continue_as_new(self) -> None:
        # An update handler waits until its change is persisted, and continue-as-new must
        # wait for every handler, so persist while any is waiting. Signals' changes are
        # simply carried over: waiting for a quiet moment would never end under a flood.
        while not workflow.all_handlers_finished():
            if self._pending or self._state.version > self._persisted:
                await self._persist()
            else:
                seen = self._state.version
                await workflow.wait_condition(
                    lambda seen=seen: (
                        workflow.all_handlers_finished()  # type: ignore[misc]
                        or self._state.version != seen
                    )
                )
        workflow.continue_as_new(
            ReferralInput(
                state=self._state,
                pending=self._pending,
                persisted_version=self._persisted,
                history_limit=self._history_limit,
            )
        )

    async def _sleep_until_next_deadline(self) -> None:
        upcoming = deadlines.next_deadline(self._state)
        timeout = None if upcoming is None else max(upcoming - workflow.now(), timedelta(0))
        if timeout == timedelta(0):
            return
        version = self._state.version
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._state.version != version or self._should_continue_as_new(),
                timeout=timeout,
            )

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._history_limit
        )

    async def _persist(self) -> None:
        state, batch, requester = self._state, self._pending, self._caller
        self._pending, self._caller = [], None
        # The same command as ever (one activity, same input); only its trace header
        # differs, which replay does not compare.
        with persisting_for(requester):
            persisted = workflow.start_activity(
                RECORD_TRANSITION,
                RecordTransitionInput(
                    view=view(state), episodes=episodes(state)[-2:], events=batch
                ),
                result_type=RecordTransitionResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PERSIST_RETRY,
            )
        await persisted
        self._persisted = state.version

    def _ctx(self) -> rules.Context:
        return rules.Context(now=workflow.now(), new_id=lambda: str(workflow.uuid4()))

    def _take(self, decision: rules.Decision) -> None:
        if decision.state.version != self._state.version:
            # In a handler, the caller's trace; in the main loop (a deadline), none.
            self._caller = caller() or self._caller
        self._state = decision.state
        self._pending.extend(_outgoing(event_id, data) for event_id, data in decision.events)

    # Commands ---------------------------------------------------------------------------

    def _validate(self, command: cmd.Command) -> None:
        # Validators must not touch the workflow's random source (they do not run on
        # replay), so ids here come from a throwaway counter.
        counter = itertools.count()
        ctx = rules.Context(now=workflow.now(), new_id=lambda: f"validation-{next(counter)}")
        try:
            rules.decide(self._state, command, ctx)
        except rules.Rejected as exc:
            raise _rejection(exc) from None

    async def _command(self, command: cmd.Command) -> CommandResult:
        try:
            decision = rules.decide(self._state, command, self._ctx())
        except rules.Rejected as exc:
            # Only reachable if another handler changed the state after validation.
            raise _rejection(exc) from None
        self._take(decision)
        version = self._state.version
        await workflow.wait_condition(lambda: self._persisted >= version)
        return self._result()

    @workflow.update
    async def confirm_received(self) -> CommandResult:
        """Returns once the new referral is in the read model (used with update-with-start,
        so creating a referral over HTTP is read-your-writes)."""
        await workflow.wait_condition(lambda: self._persisted >= 1)
        return self._result()

    def _result(self) -> CommandResult:
        return CommandResult(
            referral_id=self._state.referral_id,
            version=self._state.version,
            episode=self._state.episode.number,
            stage=self._state.episode.stage,
        )

    # Partner facts and reads ------------------------------------------------------------

    @workflow.signal
    def provider_responded(self, fact: cmd.ProviderResponded) -> None:
        self._take(rules.apply_fact(self._state, fact, self._ctx()))

    @workflow.signal
    def attendance_reported(self, fact: cmd.AttendanceRecorded) -> None:
        self._take(rules.apply_fact(self._state, fact, self._ctx()))

    @workflow.query
    def get_state(self) -> CaseState:
        return self._state

    @workflow.query
    def get_episodes(self) -> list[EpisodeSummary]:
        return episodes(self._state)


def _rejection(exc: rules.Rejected) -> ApplicationError:
    kind = "Conflict" if isinstance(exc, rules.Conflict) else "Rejected"
    return ApplicationError(str(exc), type=kind, non_retryable=True)


def _outgoing(event_id: str, data: EventData) -> OutgoingEvent:
    return OutgoingEvent(
        event_id=event_id,
        type=data.TYPE,
        topic=topic_for(data),
        occurred_at=data.occurred_at,  # type: ignore[attr-defined]
        data=data.model_dump(mode="json"),
    )
