"""The service directory under ``/directory``: anyone may read it, an admin manages it.

Reads are public (no token): the directory describes organisations and their services,
never people. Every service is shown with its effective ``capacity`` (a service whose
HSDS status is not active is closed). Writes need the ``admin`` role: create or replace
an organization or a service (HSDS-shaped bodies), set a service's capacity, or import
an HSDS JSON document. Errors are problem+json: 404 unknown service or organization,
422 a body that does not fit (naming the field).

A new organization is a new provider: its handoff topic ``linkway.handoffs.<id>`` must be
created (``linkway topics``) before a plan prescribes its services.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.auth import Caller, require
from api.deps import deps
from api.params import IdPath
from api.problems import Problem, responses
from api.strict import check_strictly
from directory import hsds
from directory.errors import DirectoryError
from directory.importer import import_directory
from directory.repository import DirectoryRepository
from events.ids import CODE_PATTERN, MAX_ID_LENGTH
from infra.db import transaction
from infra.text import Line, Prose

T = TypeVar("T")
router = APIRouter(prefix="/directory", tags=["directory"])
Admin = Annotated[Caller, Depends(require("admin"))]
ADMIN_ERRORS = responses(400, 401, 403, 413, 422, 429)
CategoryCode = Query(
    default=None,
    min_length=1,
    max_length=MAX_ID_LENGTH,
    pattern=CODE_PATTERN,
    description="e.g. exercise",
)


# An organization id names its provider's topic (linkway.handoffs.<id>): the topic rule,
# stricter than an ``IdPath``.
OrganizationIdPath = Annotated[
    str, Path(min_length=1, max_length=63, pattern=hsds.PROVIDER_ID_PATTERN)
]


class OrganizationBody(BaseModel):
    name: Line = Field(min_length=1, max_length=200)
    description: Prose | None = Field(default=None, max_length=2000)
    website: Line | None = Field(default=None, max_length=500)
    services: list[hsds.Service] = Field(default_factory=list, max_length=500)


class Imported(BaseModel):
    organizations: int
    services: int


def _engine(request: Request) -> Engine:
    return deps(request).engine


def _shown(service: hsds.Service) -> hsds.Service:
    return service.model_copy(update={"capacity": service.effective_capacity()})


def _not_found(what: str) -> Problem:
    return Problem(404, "Not found", f"no {what} with that id is in the directory")


# Public reads --------------------------------------------------------------------------------


@router.get("/services", response_model=list[hsds.Service], summary="List services (public)")
def list_services(
    request: Request,
    category: str | None = CategoryCode,
    organization_id: str | None = Query(
        default=None, min_length=1, max_length=63, pattern=hsds.PROVIDER_ID_PATTERN
    ),
    capacity: Literal["open", "waitlist", "closed"] | None = None,
) -> list[hsds.Service]:
    with Session(_engine(request)) as session:
        found = DirectoryRepository(session).services(
            category=category, organization_id=organization_id, capacity=capacity
        )
    return [_shown(s) for s in found]


@router.get(
    "/services/{service_id}",
    response_model=hsds.Service,
    responses=responses(404),
    summary="Read a service (public)",
)
def get_service(service_id: IdPath, request: Request) -> hsds.Service:
    with Session(_engine(request)) as session:
        service = DirectoryRepository(session).service(service_id)
    if service is None:
        raise _not_found("service")
    return _shown(service)


@router.get(
    "/organizations",
    response_model=list[hsds.Organization],
    summary="List organizations and their services (public)",
)
def list_organizations(request: Request) -> list[hsds.Organization]:
    with Session(_engine(request)) as session:
        found = DirectoryRepository(session).organizations()
    return [o.model_copy(update={"services": [_shown(s) for s in o.services]}) for o in found]


# Admin writes --------------------------------------------------------------------------------


@router.put(
    "/organizations/{organization_id}",
    response_model=hsds.Organization,
    responses=ADMIN_ERRORS,
    summary="Create or replace an organization (admin)",
)
async def put_organization(
    organization_id: OrganizationIdPath, body: OrganizationBody, request: Request, _: Admin
) -> hsds.Organization:
    await check_strictly(request, OrganizationBody)
    organization = _valid(lambda: hsds.Organization(id=organization_id, **body.model_dump()))

    def save(session: Session) -> hsds.Organization | None:
        DirectoryRepository(session).save_organization(organization)
        return DirectoryRepository(session).organization(organization_id)

    saved = await _written(request, save)
    assert saved is not None
    return saved.model_copy(update={"services": [_shown(s) for s in saved.services]})


@router.put(
    "/services/{service_id}",
    response_model=hsds.Service,
    responses=ADMIN_ERRORS,
    summary="Create or replace a service (admin)",
)
async def put_service(
    service_id: IdPath, body: hsds.Service, request: Request, _: Admin
) -> hsds.Service:
    await check_strictly(request, hsds.Service)
    if body.id != service_id:
        raise Problem(422, "Invalid request", "the body's id must be the service id in the path")

    def save(session: Session) -> hsds.Service | None:
        DirectoryRepository(session).save_service(body)
        return DirectoryRepository(session).service(service_id)

    saved = await _written(request, save)
    assert saved is not None
    return _shown(saved)


@router.put(
    "/services/{service_id}/capacity",
    response_model=hsds.Service,
    responses={**ADMIN_ERRORS, **responses(404)},
    summary="Set a service's capacity: open, waitlist (band) or closed (reason) (admin)",
)
async def put_capacity(
    service_id: IdPath, body: hsds.Capacity, request: Request, _: Admin
) -> hsds.Service:
    await check_strictly(request, hsds.Capacity)
    saved = await _written(
        request, lambda session: DirectoryRepository(session).set_capacity(service_id, body)
    )
    if saved is None:
        raise _not_found("service")
    return _shown(saved)


@router.post(
    "/import",
    response_model=Imported,
    responses=ADMIN_ERRORS,
    summary="Import an HSDS JSON document: organizations and services, created or replaced",
)
async def import_hsds(body: hsds.Directory, request: Request, _: Admin) -> Imported:
    # Strict JSON: a number given as a string is an error, not silently converted.
    await check_strictly(request, hsds.Directory)
    result = await _written(request, lambda session: import_directory(session, body))
    return Imported(organizations=result.organizations, services=result.services)


async def _written(request: Request, write: Callable[[Session], T]) -> T:
    """``write`` in one transaction, in a worker thread (the database work must not hold
    up the event loop every other request shares); invalid data is a 422 (``_valid``)."""

    def run() -> T:
        with transaction(_engine(request)) as session:
            return _valid(lambda: write(session))

    return await asyncio.to_thread(run)


def _valid(action: Callable[[], T]) -> T:
    try:
        return action()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise Problem(422, "Invalid directory data", f"{where}: {err['msg']}") from None
    except DirectoryError as exc:
        raise Problem(422, "Invalid directory data", str(exc)) from None
