"""The FHIR facade for partners whose systems speak FHIR R4, under ``/fhir``.

Every route is a door onto a native one, with the same token, role and scope rules:

- ``POST /fhir/ServiceRequest`` makes a referral through ``POST /referrals``'s own path
  (``api.referrals.submit``): the same validation, the same Idempotency-Key (a key
  retried through either door gets the first answer), the same workflow and events;
- ``GET /fhir/ServiceRequest/{id}`` reads a referral as ``GET /referrals/{id}/status``
  does (pseudonymous; referrer, Tier One, contract manager, admin, each in scope), and
  ``GET /fhir/ServiceRequest?identifier=&status=`` searches what the caller may see;
- ``GET /fhir/Task`` and ``GET /fhir/Task/{id}``: a Tier Two provider's own handoffs;
- ``PUT`` / ``PATCH /fhir/Task/{id}``: the owning provider moves its handoff (accepted,
  rejected, on-hold, completed), the same fact as ``POST /provider/handoffs/{id}/...``;
- ``GET /fhir/metadata``: the CapabilityStatement (open, as FHIR servers' are).

Errors are ``OperationOutcome`` (``api.fhir.outcome``). docs/fhir.md is the guide.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.readmodel import HandoffRow, ReferralRow
from api import providers, referrer
from api.auth import Caller, require
from api.commands import IdempotencyKey
from api.cursor import utc
from api.deps import deps
from api.fhir import FHIR_JSON, PREFIX
from api.fhir.mapping import answer, invalid, parse, referral_request, service_request, task
from api.params import IdPath
from api.problems import Problem, responses
from api.referrals import submit
from api.scope import scoped, visible
from events.ids import is_id

router = APIRouter(prefix=PREFIX, tags=["fhir"])
Referrer = Annotated[Caller, Depends(require("referrer", "tier_one"))]
Reader = Annotated[Caller, Depends(require("referrer", "tier_one", "contract_manager", "admin"))]
TierTwo = Annotated[Caller, Depends(require("tier_two"))]
PUBLISHED = "2026-12-02"  # when this CapabilityStatement last changed
MEDIA = ("application/fhir+json", "application/json", "application/merge-patch+json")


def fhir(resource: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        resource.model_dump_json(), status_code=status, media_type=FHIR_JSON, headers=headers
    )


def _resource(name: str, patch: bool = False) -> dict[str, Any]:
    """The OpenAPI request body of a FHIR resource (the FHIR specification defines it)."""
    schema = {"type": "object", "description": f"a FHIR R4 {name} resource (docs/fhir.md)"}
    media = (
        ["application/merge-patch+json"] if patch else ["application/fhir+json", "application/json"]
    )
    return {"requestBody": {"required": True, "content": {m: {"schema": schema} for m in media}}}


def _answers(description: str, *codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        **responses(*codes),
        200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": description},
    }


async def _body(request: Request) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in MEDIA:
        raise Problem(415, "Unsupported media type", "send Content-Type: application/fhir+json")
    return await request.body()


@router.get(
    "/metadata",
    response_class=Response,
    responses=_answers("The CapabilityStatement", 429),
    summary="What this FHIR server supports (CapabilityStatement)",
)
def metadata() -> Response:
    def resource(kind: str, interactions: list[str], search: list[str]) -> dict[str, Any]:
        return {
            "type": kind,
            "interaction": [{"code": i} for i in interactions],
            "searchParam": [
                {"name": s, "type": "date" if s == "_lastUpdated" else "token"} for s in search
            ],
        }

    statement = CapabilityStatement.model_validate(
        {
            "status": "active",
            "date": PUBLISHED,
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json"],
            "implementation": {"description": "Linkway social prescribing FHIR facade"},
            "rest": [
                {
                    "mode": "server",
                    "security": {"description": "Bearer JWT, the same as the Linkway API"},
                    "resource": [
                        resource(
                            "ServiceRequest",
                            ["create", "read", "search-type"],
                            ["identifier", "status"],
                        ),
                        resource(
                            "Task",
                            ["read", "search-type", "update", "patch"],
                            ["owner", "status", "_lastUpdated"],
                        ),
                    ],
                }
            ],
        }
    )
    return fhir(statement)


@router.post(
    "/ServiceRequest",
    status_code=201,
    response_class=Response,
    responses={
        **responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
        201: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": "Created"},
        200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": "Re-referral"},
    },
    openapi_extra=_resource("ServiceRequest"),
    summary="Make a referral (the same as POST /referrals)",
)
async def create_service_request(
    request: Request, caller: Referrer, idempotency_key: IdempotencyKey = None
) -> Response:
    sr = parse(await _body(request), ServiceRequest, "ServiceRequest")
    made = await submit(deps(request), caller, referral_request(sr), idempotency_key)
    created = json.loads(bytes(made.body))
    read = await _read(request, caller, created["referral_id"])
    return Response(
        read.body,
        status_code=made.status_code,
        media_type=FHIR_JSON,
        headers={"Location": f"{PREFIX}/ServiceRequest/{created['referral_id']}"},
    )


@router.get(
    "/ServiceRequest",
    response_class=Response,
    responses=_answers("A searchset Bundle of referrals", 401, 403, 422, 429),
    summary="Search referrals as ServiceRequests (by referral id and status; in scope)",
)
def search_service_requests(
    request: Request,
    caller: Reader,
    identifier: Annotated[
        str | None,
        Query(max_length=100, description="the referral id, optionally system|id"),
    ] = None,
    status: Annotated[
        str | None, Query(max_length=16, pattern=r"^[a-z-]+$", description="e.g. active")
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=200)] = 50,
) -> Response:
    query = scoped(select(ReferralRow), caller).order_by(col(ReferralRow.opened_at).desc())
    if identifier is not None:
        query = query.where(ReferralRow.referral_id == identifier.rpartition("|")[2])
    if status == "active":
        query = query.where(ReferralRow.stage != "dormant")
    elif status is not None:  # revoked (declined) and completed episodes are dormant
        query = query.where(ReferralRow.stage == "dormant")
    with Session(deps(request).engine) as session:
        # Declined or completed is the referrer's view's: told apart after the projection,
        # among the 500 most recent dormant referrals in scope.
        rows = list(session.exec(query.limit(count if status is None else 500)))
        shown = referrer.views(session, rows)
    found = [service_request(row, shown[row.referral_id]) for row in rows]
    found = [sr for sr in found if status is None or sr.status == status][:count]
    bundle = Bundle(
        type="searchset",
        total=len(found),
        timestamp=datetime.now(UTC),
        entry=[
            BundleEntry(fullUrl=f"{PREFIX}/ServiceRequest/{sr.id}", resource=sr) for sr in found
        ],
    )
    return fhir(bundle)


@router.get(
    "/ServiceRequest/{referral_id}",
    response_class=Response,
    responses=_answers("The referral as a ServiceRequest", 401, 403, 404, 429),
    summary="Read a referral as a ServiceRequest (pseudonymous)",
)
async def read_service_request(referral_id: IdPath, request: Request, caller: Reader) -> Response:
    return await _read(request, caller, referral_id)


async def _read(request: Request, caller: Caller, referral_id: str) -> Response:
    def read() -> Response:  # in a worker thread: the query must not hold up the loop
        with Session(deps(request).engine) as session:
            row = visible(session, caller, referral_id)
            view = referrer.views(session, [row])[row.referral_id]
        return fhir(service_request(row, view))

    return await asyncio.to_thread(read)


@router.get(
    "/Task",
    response_class=Response,
    responses=_answers("A searchset Bundle of my Tasks", 401, 403, 422, 429),
    summary="Search my handoffs as Tasks (by owner, status and _lastUpdated)",
)
def search_tasks(
    request: Request,
    caller: TierTwo,
    owner: Annotated[
        str | None, Query(max_length=100, description="Organization/<provider id> or the id")
    ] = None,
    status: Annotated[str | None, Query(max_length=16, pattern=r"^[a-z-]+$")] = None,
    last_updated: Annotated[
        str | None,
        Query(
            alias="_lastUpdated",
            max_length=40,
            pattern=r"^(gt|ge|lt|le)\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?$",
            description="gt, ge, lt or le and a date or a time with its zone, "
            "e.g. ge2026-06-01T00:00:00Z",
        ),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=500)] = 100,
) -> Response:
    rows: list[HandoffRow] = []
    if owner is None or owner.removeprefix("Organization/") == caller.partner_id:
        # Another provider's Tasks are not there for this caller: an empty searchset.
        stmt = select(HandoffRow).where(HandoffRow.provider_id == caller.partner_id)
        if status is not None:
            stmt = stmt.where(HandoffRow.status == status)
        if last_updated is not None:
            stmt = stmt.where(_updated(last_updated))
        stmt = stmt.order_by(col(HandoffRow.requested_at).desc(), col(HandoffRow.handoff_id))
        with Session(deps(request).engine) as session:
            rows = list(session.exec(stmt.limit(count)))
    bundle = Bundle(
        type="searchset",
        total=len(rows),
        timestamp=datetime.now(UTC),
        entry=[
            BundleEntry(fullUrl=f"{PREFIX}/Task/{r.handoff_id}", resource=task(r)) for r in rows
        ],
    )
    return fhir(bundle)


def _updated(search: str) -> Any:
    """A ``_lastUpdated`` search as a condition on when the handoff last changed (or was
    requested, if it has not changed since)."""
    prefix, value = search[:2], search[2:]
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise invalid("_lastUpdated", "is not a date or a time") from None
    at = utc(at)
    when = func.coalesce(col(HandoffRow.updated_at), col(HandoffRow.requested_at))
    return {"gt": when > at, "ge": when >= at, "lt": when < at, "le": when <= at}[prefix]


@router.get(
    "/Task/{handoff_id}",
    response_class=Response,
    responses=_answers("The handoff as a Task", 401, 403, 404, 429),
    summary="Read one of my handoffs as a Task",
)
def read_task(handoff_id: IdPath, request: Request, caller: TierTwo) -> Response:
    return fhir(task(_mine(request, caller, handoff_id)))


def _mine(request: Request, caller: Caller, handoff_id: str) -> HandoffRow:
    with Session(deps(request).engine) as session:
        row = session.get(HandoffRow, handoff_id)
    if row is None or row.provider_id != caller.partner_id:
        raise Problem(404, "Not found", "no Task with that id is visible to you")
    return row


_UPDATE = {**responses(400, 401, 403, 404, 413, 415, 422, 429)}
_UPDATE[202] = {
    "content": {FHIR_JSON: {"schema": {"type": "object"}}},
    "description": "Taken: an OperationOutcome naming the provider fact; the Task shows it shortly",
}


@router.put(
    "/Task/{handoff_id}",
    status_code=202,
    response_class=Response,
    responses=_UPDATE,
    openapi_extra=_resource("Task"),
    summary="Update my Task's status (accepted, rejected, on-hold, completed)",
)
async def update_task(handoff_id: IdPath, request: Request, caller: TierTwo) -> Response:
    return await _update(request, caller, handoff_id, parse(await _body(request), Task, "Task"))


@router.patch(
    "/Task/{handoff_id}",
    status_code=202,
    response_class=Response,
    responses=_UPDATE,
    openapi_extra=_resource("Task", patch=True),
    summary="Patch my Task's status, statusReason or output (JSON merge patch)",
)
async def patch_task(handoff_id: IdPath, request: Request, caller: TierTwo) -> Response:
    raw = await _body(request)
    # The patch says what changes: the reason and output of the Task as it was do not
    # carry over into the new status (a waitlist band is not a rejection's reason).
    merged = task(_mine(request, caller, handoff_id)).model_dump(
        mode="json", exclude={"statusReason", "output"}
    )
    try:
        patch = json.loads(raw)
    except ValueError:
        raise invalid("Task", "the patch is not JSON") from None
    if not isinstance(patch, dict):
        raise invalid("Task", "a merge patch is a JSON object")
    if not set(patch) <= {"status", "statusReason", "output", "resourceType"}:
        raise invalid("Task", "a provider patches status, statusReason and output only")
    for name, value in patch.items():  # JSON merge patch (RFC 7396): null removes
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return await _update(
        request, caller, handoff_id, parse(json.dumps(merged).encode(), Task, "Task")
    )


async def _update(request: Request, caller: Caller, handoff_id: str, update: Task) -> Response:
    if not is_id(handoff_id) or (update.id is not None and update.id != handoff_id):
        raise invalid("Task.id", "must be the id in the path")
    said = answer(update)
    submitted = await providers.respond(
        request,
        caller,
        handoff_id,
        said.decision,
        reason_code=said.reason_code,
        waitlist_band=said.waitlist_band,  # type: ignore[arg-type]
        delivered_code=said.delivered_code,
        sessions_delivered=said.sessions_delivered,
    )
    return JSONResponse(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": (
                        f"{said.decision} taken as provider fact {submitted.event_id}"
                        f"{' (a repeat: already received)' if submitted.duplicate else ''}; "
                        "read the Task to see its effect"
                    ),
                }
            ],
        },
        status_code=202,
        media_type=FHIR_JSON,
    )
