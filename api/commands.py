"""The casework commands: one POST route per workflow update, for the ``tier_one`` role.

A command names the referral version the caller saw (``expected_version``, required):
a stale one is a 409 (optimistic concurrency). Each needs an ``Idempotency-Key``: a
retry with the same key and body gets the original answer and changes nothing. A
rejected command answers with the workflow validator's own message: 422 when its data
is wrong, 409 when it does not fit the referral's stage. The actor is the caller's
pseudonymous subject; request ids are ids the server reserved, never client text.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model
from sqlmodel import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import schemas
from api.auth import Caller, require
from api.deps import Deps, deps
from api.idempotency import once
from api.params import IdPath
from api.problems import Problem, responses
from api.scope import not_found, visible
from api.strict import check_strictly
from directory import PrescriptionRejected, check_prescriptions
from pathway import commands as cmd
from workflows import referral_workflow_id
from workflows.referral import CommandResult

router = APIRouter(prefix="/referrals", tags=["casework"])
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="required: any 1-128 printable characters, unique per request",
    ),
]
LinkWorker = Annotated[Caller, Depends(require("tier_one"))]
UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


def caller_key(caller: Caller) -> str:
    """Whose Idempotency-Keys these are: one namespace per partner and subject."""
    return hashlib.sha256(f"{caller.partner_id}/{caller.actor_id}".encode()).hexdigest()


async def execute(d: Deps, referral_id: str, update: str, command: cmd.Command) -> CommandResult:
    """Send one command as a workflow update; its rejection becomes a problem."""
    handle = d.client.get_workflow_handle(referral_workflow_id(referral_id))
    try:
        return await handle.execute_update(update, command, result_type=CommandResult)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type in ("Rejected", "Conflict"):
            status = 409 if cause.type == "Conflict" else 422
            raise Problem(status, "Command rejected", cause.message) from None
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found() from None
        if exc.status in UNAVAILABLE:
            raise Problem(503, "Pathway unavailable", "retry later", {"Retry-After": "5"}) from None
        raise


# Command routes: path, workflow update, command model. The body is the command less the
# fields the server fills in (request id from the reserved id, actor from the caller).
COMMANDS: list[tuple[str, str, type[cmd.Command], str]] = [
    ("accept", "accept_referral", cmd.AcceptReferral, "Triage: accept the referral"),
    ("decline", "decline_referral", cmd.DeclineReferral, "Triage: decline, with a reason code"),
    ("link-worker", "assign_link_worker", cmd.AssignLinkWorker, "Assign or reassign a link worker"),
    (
        "contact-attempts",
        "record_contact_attempt",
        cmd.RecordContactAttempt,
        "Record a contact attempt",
    ),
    (
        "assessment",
        "record_assessment",
        cmd.RecordAssessment,
        "Record the assessment and baseline measures",
    ),
    (
        "plan",
        "agree_plan",
        cmd.AgreePlan,
        "Agree or revise the plan (prescriptions become handoffs)",
    ),
    ("checkin", "record_checkin", cmd.RecordCheckin, "Record the mid-point check-in"),
    ("review", "record_review", cmd.RecordReview, "Record the review, its measures and decision"),
    ("followup", "record_followup", cmd.RecordFollowup, "Record the sustained-outcome follow-up"),
    ("reenter", "reenter", cmd.ReEnter, "The person comes back: a new episode"),
    ("end-episode", "end_episode", cmd.EndEpisode, "End the episode (the case stays, dormant)"),
    (
        "consent/withdraw",
        "withdraw_consent",
        cmd.WithdrawConsent,
        "Withdraw consent to share (cancels open handoffs)",
    ),
    ("consent/give", "give_consent", cmd.GiveConsent, "Give consent to share again"),
    ("deadlines", "reschedule_deadline", cmd.RescheduleDeadline, "Reschedule a due date"),
]
SERVER_FILLED = {"request_id", "actor_id", "kind", "expected_version"}


def _body_model(command: type[cmd.Command]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in command.model_fields.items()
        if name not in SERVER_FILLED
    }
    fields["expected_version"] = (
        int,
        Field(ge=0, le=2**31, description="the referral version you saw; stale answers 409"),
    )
    return create_model(f"{command.__name__}Body", __config__={"extra": "forbid"}, **fields)


def _add_command_route(path: str, update: str, command: type[cmd.Command], summary: str) -> None:
    Body = _body_model(command)

    async def run_command(
        referral_id: IdPath,
        body: Body,  # type: ignore[valid-type]
        request: Request,
        caller: LinkWorker,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        d = deps(request)
        await check_strictly(request, Body)
        given: BaseModel = body
        fields = given.model_dump()
        with Session(d.engine) as session:
            visible(session, caller, referral_id)
            if command is cmd.AgreePlan:
                # The workflow cannot read the directory, so a plan naming an unknown or
                # closed service is refused here, before it is sent.
                try:
                    check_prescriptions(session, given.prescriptions)  # type: ignore[attr-defined]
                except PrescriptionRejected as exc:
                    raise Problem(422, "Prescription rejected", str(exc)) from None

        async def run(request_id: str) -> tuple[int, BaseModel]:
            message = command(request_id=request_id, actor_id=caller.actor_id, **fields)
            result = await execute(d, referral_id, update, message)
            return 200, schemas.CommandAccepted(**result.model_dump())

        identity = {
            "path": f"/referrals/{referral_id}/{path}",
            "body": given.model_dump(mode="json"),
        }
        return await once(d.idempotency, caller_key(caller), idempotency_key, identity, run)

    run_command.__name__ = update
    # Annotations are strings under ``from __future__``; FastAPI needs the real body model.
    run_command.__annotations__["body"] = Body
    router.add_api_route(
        f"/{{referral_id}}/{path}",
        run_command,
        methods=["POST"],
        response_model=schemas.CommandAccepted,
        summary=summary,
        operation_id=update,
        responses=responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
    )


for _path, _update_name, _command, _summary in COMMANDS:
    _add_command_route(_path, _update_name, _command, _summary)
