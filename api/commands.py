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
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry import metrics
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
from api.scope import check_visible, not_found
from api.strict import check_strictly
from directory import PrescriptionRejected, check_prescriptions, check_signposts
from pathway import commands as cmd
from pathway.rules import BY_COMMAND, COMMANDS, CommandSpec
from workflows import referral_workflow_id
from workflows.models import CommandResult
from workflows.referral import command_update

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


# Measured here, where the command is executed, not in the workflow: the pure core
# imports no telemetry. Attributes are the command's kind and the result's code only.
_meter = metrics.get_meter("linkway.api")
COMMANDS_EXECUTED = _meter.create_counter(
    "linkway.commands", unit="{command}", description="Casework commands by kind and result"
)
COMMAND_DURATION = _meter.create_histogram(
    "linkway.command.duration",
    unit="s",
    description="Time from sending a command's update to the workflow's answer",
)


async def execute(d: Deps, referral_id: str, command: cmd.Command) -> CommandResult:
    """Send one command as its workflow update; its rejection becomes a problem."""
    handle = d.client.get_workflow_handle(referral_workflow_id(referral_id))
    started, result = time.perf_counter(), "error"
    try:
        answer = await handle.execute_update(command_update(type(command)), command)
        result = "accepted"
        return answer
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type in ("Rejected", "Conflict"):
            result = "conflict" if cause.type == "Conflict" else "rejected"
            status = 409 if cause.type == "Conflict" else 422
            raise Problem(status, "Command rejected", cause.message) from None
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            result = "not_found"
            raise not_found() from None
        if exc.status in UNAVAILABLE:
            result = "unavailable"
            raise Problem(503, "Pathway unavailable", "retry later", {"Retry-After": "5"}) from None
        raise
    finally:
        attributes = {"command": BY_COMMAND[type(command)].update, "result": result}
        COMMANDS_EXECUTED.add(1, attributes)
        COMMAND_DURATION.record(time.perf_counter() - started, attributes)


# The body of each route is its command less the fields the server fills in (request id
# from the reserved id, actor from the caller).
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


def _add_command_route(spec: CommandSpec) -> None:
    command, path = spec.command, spec.path
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

        def admit(session: Session) -> None:
            # Runs off the event loop, in the Idempotency-Key reservation's transaction,
            # and before the key is looked at: a referral out of scope is the 404 of a
            # missing one, and a refused plan a 422, with no key reserved for either.
            check_visible(session, caller, referral_id)
            if command is cmd.AgreePlan:
                # The workflow cannot read the directory, so a plan naming an unknown or
                # closed service is refused here, before it is sent.
                try:
                    check_prescriptions(session, given.prescriptions)  # type: ignore[attr-defined]
                    check_signposts(session, [s.service_id for s in given.signposts])  # type: ignore[attr-defined]
                except PrescriptionRejected as exc:
                    raise Problem(422, "Prescription rejected", str(exc)) from None

        async def run(request_id: str) -> tuple[int, BaseModel]:
            message = command(request_id=request_id, actor_id=caller.actor_id, **fields)
            result = await execute(d, referral_id, message)
            # A logged activity is named by its request id: the caller corrects it by that.
            activity_id = request_id if command is cmd.LogActivity else None
            return 200, schemas.CommandAccepted(**result.model_dump(), activity_id=activity_id)

        identity = {
            "path": f"/referrals/{referral_id}/{path}",
            "body": given.model_dump(mode="json"),
        }
        return await once(
            d.idempotency, caller_key(caller), idempotency_key, identity, run, check=admit
        )

    run_command.__name__ = spec.update
    # Annotations are strings under ``from __future__``; FastAPI needs the real body model.
    run_command.__annotations__["body"] = Body
    router.add_api_route(
        f"/{{referral_id}}/{path}",
        run_command,
        methods=["POST"],
        response_model=schemas.CommandAccepted,
        summary=spec.summary,
        operation_id=spec.update,
        responses=responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
    )


for _spec in COMMANDS:
    _add_command_route(_spec)
