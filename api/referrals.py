"""Referral resources: create (or re-refer), read, and the casework commands.

Each command maps to one workflow update, so a rejected command answers with the
validator's own message: 422 when its data is wrong, 409 when it does not fit the
referral's stage or the version the caller saw is stale.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, create_model
from sqlmodel import Session
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import schemas
from api.idempotency import IdempotencyStore, check_key, fingerprint
from api.problems import Problem
from api.tenancy import Tenancy
from infra.db import transaction
from infra.personal_data import PersonalDataStore
from infra.readmodel import ReferralRow
from pathway import commands as cmd
from pathway.config import PathwayConfig
from workflows import TASK_QUEUE, referral_workflow_id
from workflows.referral import CommandResult, NewReferral, ReferralInput, ReferralWorkflow

router = APIRouter(prefix="/referrals", tags=["referrals"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]

# The actor until bearer tokens arrive: a pseudonymous id, never a person's name.
ANONYMOUS = "anonymous"


class Deps:
    """What the routes need, built once when the app starts."""

    def __init__(
        self,
        client: Client,
        engine: Any,
        people: PersonalDataStore,
        tenancy: Tenancy,
        config: PathwayConfig,
    ) -> None:
        self.client, self.engine, self.people = client, engine, people
        self.tenancy, self.config = tenancy, config
        self.idempotency = IdempotencyStore(engine)


def deps(request: Request) -> Deps:
    return request.app.state.deps


@router.post(
    "",
    status_code=201,
    response_model=schemas.ReferralCreated,
    responses={200: {"model": schemas.ReferralCreated, "description": "Re-referral"}},
)
async def create_referral(
    body: schemas.ReferralRequest, request: Request, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    d = deps(request)
    key = check_key(idempotency_key)
    partner = d.tenancy.partner_for_locality(body.locality)
    if partner is None:
        raise Problem(422, "Unknown locality", f"no Tier One partner serves {body.locality!r}")
    record = d.idempotency.begin(
        ANONYMOUS, key, fingerprint(body.model_dump(mode="json")), uuid.uuid4().hex
    )
    if record.state == "done":
        return JSONResponse(json.loads(record.body or "{}"), status_code=record.status_code or 200)
    try:
        status, created = await _create(d, body, partner.id, record.reserved_id, key)
    except BaseException:
        d.idempotency.fail(ANONYMOUS, key)
        raise
    d.idempotency.finish(ANONYMOUS, key, status, created.model_dump_json())
    return JSONResponse(created.model_dump(mode="json"), status_code=status)


async def _create(
    d: Deps, body: schemas.ReferralRequest, partner_id: str, new_id: str, key: str
) -> tuple[int, schemas.ReferralCreated]:
    existing = (
        d.people.find_by_nhs_number(body.person.nhs_number) if body.person.nhs_number else None
    )
    if existing:
        result = await _update(
            d,
            existing,
            "reenter",
            cmd.ReEnter(
                request_id=key,
                actor_id=ANONYMOUS,
                source=body.source,
                referrer_org_id=body.referrer_org_id,
                reason_codes=body.reason_codes,
            ),
        )
        return 200, schemas.ReferralCreated(
            referral_id=existing, episode=result.episode, stage=result.stage, reentry=True
        )
    with transaction(d.engine) as session:
        d.people.put(
            session, new_id, body.person.model_dump(mode="json"), ANONYMOUS, partner_id, "referral"
        )
    start = WithStartWorkflowOperation(
        ReferralWorkflow.run,
        ReferralInput(
            new=NewReferral(
                referral_id=new_id,
                partner_id=partner_id,
                locality=body.locality,
                source=body.source,
                referrer_org_id=body.referrer_org_id,
                reason_codes=body.reason_codes,
                consent_to_share=body.consent_to_share,
                config=d.config,
            )
        ),
        id=referral_workflow_id(new_id),
        task_queue=TASK_QUEUE,
        # A retried request finds the workflow it started: one referral, one workflow.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    result = await d.client.execute_update_with_start_workflow(
        ReferralWorkflow.confirm_received, start_workflow_operation=start
    )
    return 201, schemas.ReferralCreated(
        referral_id=new_id, episode=result.episode, stage=result.stage, reentry=False
    )


@router.get("/{referral_id}", response_model=schemas.ReferralStatus)
async def get_referral(referral_id: str, request: Request) -> schemas.ReferralStatus:
    with Session(deps(request).engine) as session:
        row = session.get(ReferralRow, referral_id)
    if row is None:
        raise _not_found()
    return schemas.ReferralStatus(
        **row.model_dump(exclude={"deadlines", "overdue", "outcomes", "handoffs"}),
        deadlines=json.loads(row.deadlines),
        actions_due=json.loads(row.overdue),
        outcomes=json.loads(row.outcomes),
    )


def _not_found() -> Problem:
    return Problem(404, "Not found", "no referral with that id is visible to you")


async def _update(d: Deps, referral_id: str, update: str, command: cmd.Command) -> CommandResult:
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
            raise _not_found() from None
        raise


# Command routes: path, workflow update, command model. The body is the command less the
# fields the server fills in (request id from Idempotency-Key, actor from the caller).
COMMANDS: list[tuple[str, str, type[cmd.Command]]] = [
    ("accept", "accept_referral", cmd.AcceptReferral),
    ("decline", "decline_referral", cmd.DeclineReferral),
    ("link-worker", "assign_link_worker", cmd.AssignLinkWorker),
    ("contact-attempts", "record_contact_attempt", cmd.RecordContactAttempt),
    ("assessment", "record_assessment", cmd.RecordAssessment),
    ("plan", "agree_plan", cmd.AgreePlan),
    ("checkin", "record_checkin", cmd.RecordCheckin),
    ("review", "record_review", cmd.RecordReview),
    ("followup", "record_followup", cmd.RecordFollowup),
    ("end-episode", "end_episode", cmd.EndEpisode),
    ("consent/withdraw", "withdraw_consent", cmd.WithdrawConsent),
    ("consent/give", "give_consent", cmd.GiveConsent),
    ("deadlines", "reschedule_deadline", cmd.RescheduleDeadline),
]
SERVER_FILLED = {"request_id", "actor_id", "kind"}


def _body_model(command: type[cmd.Command]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in command.model_fields.items()
        if name not in SERVER_FILLED
    }
    return create_model(f"{command.__name__}Body", __config__={"extra": "forbid"}, **fields)


def _add_command_route(path: str, update: str, command: type[cmd.Command]) -> None:
    Body = _body_model(command)

    async def run_command(
        referral_id: str,
        body: Body,  # type: ignore[valid-type]
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> schemas.CommandAccepted:
        d = deps(request)
        with Session(d.engine) as session:
            if session.get(ReferralRow, referral_id) is None:
                raise _not_found()
        message = command(
            request_id=idempotency_key or uuid.uuid4().hex,
            actor_id=ANONYMOUS,
            **body.model_dump(),  # type: ignore[attr-defined]
        )
        result = await _update(d, referral_id, update, message)
        return schemas.CommandAccepted(**result.model_dump())

    run_command.__name__ = update
    # Annotations are strings under ``from __future__``; FastAPI needs the real body model.
    run_command.__annotations__["body"] = Body
    router.add_api_route(
        f"/{{referral_id}}/{path}",
        run_command,
        methods=["POST"],
        response_model=schemas.CommandAccepted,
        summary=(command.__doc__ or update.replace("_", " ")).strip().splitlines()[0],
        responses={404: {}, 409: {}, 422: {}},
    )


for _path, _update_name, _command in COMMANDS:
    _add_command_route(_path, _update_name, _command)
