"""Referral resources: make a referral (or re-refer a person), list and read referrals.

A referrer or a Tier One partner makes a referral; the person's details go to the
personal-data store only, and the workflow gets a random pseudonymous id. A referral for
an NHS number the serving Tier One partner already has a case for re-enters that case
as a new episode. Reads come from the read model, within the caller's scope
(``api.scope``): a referrer gets the status of the referrals it made, Tier One, contract
managers and admins the whole pseudonymous record, Tier Two nothing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import and_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from activities.readmodel import EpisodeRow, HandoffRow, MeasurementRow, ReferralRow, ReferrerLink
from api import referrer, schemas
from api.auth import Caller, require
from api.commands import IdempotencyKey, caller_key, execute
from api.cursor import Limit, decode, encode
from api.deps import Deps, deps
from api.idempotency import once
from api.params import IdPath
from api.personal_data import Access
from api.problems import Problem, responses
from api.scope import scoped, visible
from api.strict import check_strictly
from events.referral import Stage
from infra.db import transaction
from pathway import commands as cmd
from workflows import TASK_QUEUE, referral_workflow_id
from workflows.models import NewReferral, ReferralInput
from workflows.referral import ReferralWorkflow

router = APIRouter(prefix="/referrals", tags=["referrals"])
Referrer = Annotated[Caller, Depends(require("referrer", "tier_one"))]
Reader = Annotated[Caller, Depends(require("referrer", "tier_one", "contract_manager", "admin"))]
Viewer = Annotated[Caller, Depends(require("tier_one", "contract_manager", "admin"))]


@router.post(
    "",
    status_code=201,
    response_model=schemas.ReferralCreated,
    responses={
        200: {"model": schemas.ReferralCreated, "description": "Re-referral: a new episode"},
        **responses(400, 401, 403, 409, 413, 422, 429, 503),
    },
)
async def create_referral(
    body: schemas.ReferralRequest,
    request: Request,
    caller: Referrer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    await check_strictly(request, schemas.ReferralRequest)
    return await submit(deps(request), caller, body, idempotency_key)


async def submit(
    d: Deps, caller: Caller, body: schemas.ReferralRequest, idempotency_key: str | None
) -> JSONResponse:
    """Make a referral once per Idempotency-Key: ``POST /referrals`` and the FHIR facade's
    ``POST /fhir/ServiceRequest`` both come here, so a key retried through either door
    gets the first answer."""
    partner = d.tenancy.partner_for_locality(body.locality)
    if partner is None or (caller.role == "tier_one" and partner.id != caller.partner_id):
        raise Problem(422, "Unknown locality", "no Tier One partner you refer to serves it")
    # The request's identity, for Idempotency-Key: the person only as a keyed digest.
    identity = {
        "path": "/referrals",
        "body": body.model_dump(mode="json", exclude={"person"}),
        "person": d.people.digest(body.person.model_dump(mode="json")),
    }

    async def run(new_id: str) -> tuple[int, BaseModel]:
        return await _create(d, caller, body, partner.id, new_id)

    return await once(d.idempotency, caller_key(caller), idempotency_key, identity, run)


async def _create(
    d: Deps, caller: Caller, body: schemas.ReferralRequest, partner_id: str, new_id: str
) -> tuple[int, schemas.ReferralCreated]:
    """Open a case under ``new_id``, or re-enter the person's case.

    A retry resumes with the same ``new_id`` after the first attempt stopped anywhere, and
    every step converges: the person write is an upsert under ``new_id``, the start finds
    the workflow an earlier attempt started, and a person record stored under ``new_id``
    is this request's own, so it is never taken for an earlier case to re-enter.
    """
    access = Access(caller.actor_id, caller.partner_id, "referral")
    nhs = body.person.nhs_number
    existing = d.people.find_by_nhs_number(nhs, partner_id, access) if nhs else None
    if existing and existing != new_id:
        return await _join(d, caller, body, partner_id, new_id, existing)
    try:
        with transaction(d.engine) as session:
            d.people.put(session, new_id, partner_id, body.person.model_dump(mode="json"), access)
    except IntegrityError:
        # Another request for the same new person stored them first (the blind index is
        # unique per partner): this referral joins that case, as a re-referral would.
        winner = d.people.find_by_nhs_number(nhs, partner_id, access) if nhs else None
        if winner is None or winner == new_id:
            raise
        return await _join(d, caller, body, partner_id, new_id, winner, racing=True)
    _link_referrer(d, caller, new_id)
    return await _start(d, body, partner_id, new_id)


# How long a referral that lost the race to open a person's case waits for the winner to
# start its workflow (it is between its commit and its start, normally milliseconds).
RACE_WAIT_SECONDS = 5.0


async def _join(
    d: Deps,
    caller: Caller,
    body: schemas.ReferralRequest,
    partner_id: str,
    new_id: str,
    existing: str,
    racing: bool = False,
) -> tuple[int, schemas.ReferralCreated]:
    """Re-enter (or join) the person's case ``existing`` with this referral."""
    _link_referrer(d, caller, existing)
    reenter = cmd.ReEnter(
        request_id=new_id,  # a retry or a second try is the same command, applied once
        actor_id=caller.actor_id,
        source=body.source,
        referrer_org_id=body.referrer_org_id,
        reason_codes=body.reason_codes,
    )
    deadline = asyncio.get_running_loop().time() + (RACE_WAIT_SECONDS if racing else 0)
    while True:
        try:
            result = await execute(d, existing, reenter)
            break
        except Problem as exc:
            if exc.status != 404:
                raise
            if asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
                continue
            # The person's details were stored by a create that died before it started
            # its workflow, and was not retried (yet): there is no case to re-enter. This
            # referral opens it, under the id those details are stored under, so the
            # person is not locked out and still has one case; the interrupted request's
            # retry then finds this workflow and answers with the same case.
            return await _start(d, body, partner_id, existing)
    return 200, schemas.ReferralCreated(
        referral_id=existing, episode=result.episode, stage=result.stage, reentry=True
    )


async def _start(
    d: Deps, body: schemas.ReferralRequest, partner_id: str, new_id: str
) -> tuple[int, schemas.ReferralCreated]:
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


def _link_referrer(d: Deps, caller: Caller, referral_id: str) -> None:
    if caller.role != "referrer":
        return
    try:
        with transaction(d.engine) as session:
            if session.get(ReferrerLink, (referral_id, caller.partner_id)) is None:
                session.add(
                    ReferrerLink(
                        referral_id=referral_id,
                        partner_id=caller.partner_id,
                        linked_at=datetime.now(UTC),
                    )
                )
    except IntegrityError:
        # A concurrent referral by the same partner for the same case linked it first
        # (the race to open a person's case): the link is there, as wanted.
        pass


@router.get(
    "",
    response_model=schemas.ReferralPage,
    responses=responses(401, 403, 422, 429),
    summary="The status of every referral visible to the caller",
)
def list_referrals(
    request: Request,
    caller: Reader,
    stage: Stage | None = None,
    cursor: str | None = Query(default=None, min_length=1, max_length=200),
    limit: Limit = 50,
) -> schemas.ReferralPage:
    query = scoped(_with_episode(), caller).order_by(col(ReferralRow.referral_id))
    if stage:
        query = query.where(ReferralRow.stage == stage)
    if cursor:
        (after,) = decode(cursor, 1)
        query = query.where(col(ReferralRow.referral_id) > after)
    with Session(deps(request).engine) as session:
        rows = list(session.exec(query.limit(limit + 1)))
        shown = referrer.views(session, [row for row, _ in rows[:limit]])
    items = [referrer.status(row, ep, shown[row.referral_id]) for row, ep in rows[:limit]]
    more = len(rows) > limit
    return schemas.ReferralPage(
        items=items, next_cursor=encode(items[-1].referral_id) if more else None
    )


@router.get(
    "/{referral_id}/status",
    response_model=schemas.ReferralStatus,
    responses=responses(401, 403, 404, 429),
    summary="A referral's status (what a referrer may see)",
)
def get_status(referral_id: IdPath, request: Request, caller: Reader) -> schemas.ReferralStatus:
    with Session(deps(request).engine) as session:
        row = visible(session, caller, referral_id)
        episode = session.get(EpisodeRow, (row.referral_id, row.episode))
        view = referrer.views(session, [row])[row.referral_id]
    return referrer.status(row, episode, view)


@router.get(
    "/{referral_id}",
    response_model=schemas.Referral,
    responses=responses(401, 403, 404, 429),
    summary="A referral with its episodes, handoffs, measures and due dates",
)
def get_referral(referral_id: IdPath, request: Request, caller: Viewer) -> schemas.Referral:
    with Session(deps(request).engine) as session:
        row = visible(session, caller, referral_id)
        episodes = session.exec(
            select(EpisodeRow).where(EpisodeRow.referral_id == row.referral_id)
        ).all()
        handoffs = session.exec(
            select(HandoffRow).where(HandoffRow.referral_id == row.referral_id)
        ).all()
        measures = session.exec(
            select(MeasurementRow)
            .where(MeasurementRow.referral_id == row.referral_id)
            .order_by(
                col(MeasurementRow.episode),
                col(MeasurementRow.administered_at),
                col(MeasurementRow.measurement_id),
            )
        ).all()
    return schemas.Referral(
        **row.model_dump(exclude={"deadlines", "overdue", "outcomes", "handoffs", "goals"}),
        deadlines=json.loads(row.deadlines),
        actions_due=json.loads(row.overdue),
        outcomes=json.loads(row.outcomes),
        episodes=[
            schemas.Episode(**e.model_dump(exclude={"outcomes"}), outcomes=json.loads(e.outcomes))
            for e in sorted(episodes, key=lambda e: e.number)
        ],
        handoffs=[schemas.Handoff(**h.model_dump()) for h in handoffs],
        measures=[_measure(m) for m in measures],
        goals=json.loads(row.goals),
        trajectory=_trajectory([m for m in measures if m.episode == row.episode]),
    )


PHASES = ("baseline", "midpoint", "review", "followup")


def _trajectory(measures: list[MeasurementRow]) -> list[schemas.Trajectory]:
    """The current episode's scores per instrument, in pathway order (baseline, mid-point,
    review, follow-up): how the person's measures moved."""
    by_instrument: dict[str, list[MeasurementRow]] = {}
    for m in measures:
        by_instrument.setdefault(m.instrument, []).append(m)
    return [
        schemas.Trajectory(
            instrument=code,
            points=[
                schemas.TrajectoryPoint(
                    phase=m.phase,
                    administered_at=m.administered_at,
                    raw=json.loads(m.raw),
                    derived=json.loads(m.derived),
                )
                for m in sorted(rows, key=lambda m: (PHASES.index(m.phase), m.administered_at))
            ],
        )
        for code, rows in sorted(by_instrument.items())
    ]


def _with_episode() -> Any:
    current = and_(
        col(EpisodeRow.referral_id) == col(ReferralRow.referral_id),
        col(EpisodeRow.number) == col(ReferralRow.episode),
    )
    return select(ReferralRow, EpisodeRow).outerjoin(EpisodeRow, current)


def _measure(row: MeasurementRow) -> schemas.Measure:
    return schemas.Measure(
        **row.model_dump(exclude={"referral_id", "raw", "derived"}),
        raw=json.loads(row.raw),
        derived=json.loads(row.derived),
    )
