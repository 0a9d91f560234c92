"""The person behind a referral: details, "what matters to me" and case notes.

Only the Tier One partner whose localities the referral is in may read or write these,
and every read or write is audited with its purpose (``GET /audit``). If the audit
record cannot be written the data is neither read nor written: 503. A read must say
why (``purpose``, required: a default would make a stated purpose and a forgotten one
look the same in the audit log). Nothing here is ever copied into a workflow, an event
or a log.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from activities.readmodel import ReferralRow
from api import schemas
from api.auth import Caller, require
from api.commands import IdempotencyKey, caller_key
from api.deps import Deps, deps
from api.idempotency import once
from api.params import IdPath
from api.personal_data import Access, AuditFailed
from api.problems import Problem, responses
from api.scope import visible
from api.strict import check_strictly

router = APIRouter(prefix="/referrals", tags=["people"])
LinkWorker = Annotated[Caller, Depends(require("tier_one"))]
Purpose = Literal["direct_care", "safeguarding", "contact", "subject_access_request"]
PURPOSES = get_args(Purpose)
# Optional to FastAPI only so that a missing purpose is our 400 naming the purposes (the
# OpenAPI document declares it required: ``api.problems.REQUIRED``).
PurposeQuery = Annotated[
    Purpose | None, Query(description="required: why the data is read; recorded in the audit log")
]


def stated(purpose: Purpose | None) -> Purpose:
    if purpose is None:
        raise Problem(
            400,
            "Purpose required",
            f"say why personal data is read: ?purpose= one of {', '.join(PURPOSES)}",
        )
    return purpose


def _row(d: Deps, caller: Caller, referral_id: str) -> ReferralRow:
    with Session(d.engine) as session:
        return visible(session, caller, referral_id)


def audit_failed() -> Problem:
    return Problem(503, "Audit unavailable", "personal data is not read without an audit record")


def unwritten() -> Problem:
    # The write and its audit record share one transaction: whichever failed, neither
    # was written. 503, as for a read: the client retries, nothing is half done.
    return Problem(
        503,
        "Audit unavailable",
        "personal data is not written without an audit record; nothing was written",
        {"Retry-After": "5"},
    )


@router.get(
    "/{referral_id}/person",
    response_model=schemas.Person,
    responses=responses(400, 401, 403, 404, 422, 429, 503),
    summary="The person's details (audited read)",
)
def get_person(
    referral_id: IdPath, request: Request, caller: LinkWorker, purpose: PurposeQuery = None
) -> schemas.Person:
    d = deps(request)
    why = stated(purpose)
    row = _row(d, caller, referral_id)
    try:
        person = d.people.get(row.referral_id, Access(caller.actor_id, caller.partner_id, why))
    except AuditFailed:
        raise audit_failed() from None
    if person is None:
        raise Problem(404, "Not found", "no referral with that id is visible to you")
    return schemas.Person.model_validate(person)


@router.put(
    "/{referral_id}/person",
    status_code=204,
    response_class=Response,
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
    summary="Replace the person's details (audited write)",
)
async def put_person(
    referral_id: IdPath, body: schemas.Person, request: Request, caller: LinkWorker
) -> Response:
    d = deps(request)
    await check_strictly(request, schemas.Person)
    row = _row(d, caller, referral_id)
    access = Access(caller.actor_id, caller.partner_id, "update_details")
    try:
        d.people.replace(row.referral_id, row.partner_id, body.model_dump(mode="json"), access)
    except IntegrityError:
        # The unique blind index: another of this partner's cases has the NHS number.
        raise Problem(
            409,
            "NHS number in use",
            "another case of yours holds this NHS number: one person has one case; "
            "nothing was written",
        ) from None
    except SQLAlchemyError:
        raise unwritten() from None
    return Response(status_code=204)


@router.post(
    "/{referral_id}/notes",
    status_code=201,
    response_model=schemas.NoteCreated,
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
    summary="Add a case note (free text, audited write)",
)
async def add_note(
    referral_id: IdPath,
    body: schemas.NoteRequest,
    request: Request,
    caller: LinkWorker,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    d = deps(request)
    await check_strictly(request, schemas.NoteRequest)
    row = _row(d, caller, referral_id)
    access = Access(caller.actor_id, caller.partner_id, "case_note")
    identity = {
        "path": f"/referrals/{row.referral_id}/notes",
        "text": d.people.digest(body.text),
    }

    async def run(note_id: str) -> tuple[int, BaseModel]:
        try:
            note = d.people.add_note(row.referral_id, body.text, access, note_id=note_id)
        except SQLAlchemyError:
            raise unwritten() from None
        return 201, schemas.NoteCreated.model_validate(note)

    return await once(d.idempotency, caller_key(caller), idempotency_key, identity, run)


@router.get(
    "/{referral_id}/notes",
    response_model=schemas.NoteList,
    responses=responses(400, 401, 403, 404, 422, 429, 503),
    summary="The case notes, oldest first (audited read)",
)
def list_notes(
    referral_id: IdPath, request: Request, caller: LinkWorker, purpose: PurposeQuery = None
) -> schemas.NoteList:
    d = deps(request)
    why = stated(purpose)
    row = _row(d, caller, referral_id)
    try:
        notes = d.people.notes(row.referral_id, Access(caller.actor_id, caller.partner_id, why))
    except AuditFailed:
        raise audit_failed() from None
    return schemas.NoteList(items=[schemas.Note.model_validate(n) for n in notes])
