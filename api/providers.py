"""The HTTP door for Tier Two providers without Kafka, under ``/provider``.

Every route needs the ``tier_two`` role; the token's partner is the provider. A provider
lists its own handoffs, accepts, rejects (with a reason code) or waitlists one (with a
band), says a service has started, reports one completed (with what was delivered), and
reports attendance (``api.provider_attendance``, mounted here). A handoff made to
another provider answers 404, the same as one that does not exist.

Reports are the same facts as the Kafka events ``linkway.provider.response.v1`` and
``linkway.provider.attendance.v1`` and go through the same code
(``inbound.provider_facts``), so both doors give the same result. Their event ids are
derived from what they say, so retrying a request or an upload changes nothing twice. A
report is accepted (202) once the referral's workflow has it; the handoff list shows
its effect moments later.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import Session, col, select

from activities.readmodel import HandoffRow, ReferralRow
from api import provider_attendance
from api.auth import Caller
from api.cursor import Instant, utc
from api.deps import deps
from api.params import IdPath
from api.people import audit_failed
from api.personal_data import Access, AuditFailed
from api.problems import responses
from api.provider_common import ACCEPTED, TierTwo, facts_of, handoff_of, not_found, submit
from api.provider_schemas import (
    Completion,
    Contact,
    ProviderHandoff,
    Rejection,
    Submitted,
    Waitlist,
    WaitlistBand,
)
from api.strict import check_strictly
from events import provider
from events.ids import CODE_PATTERN
from inbound.provider_facts import (
    response_event_id,
)

router = APIRouter(prefix="/provider", tags=["provider"])


# Reads ---------------------------------------------------------------------------------------


@router.get(
    "/handoffs",
    response_model=list[ProviderHandoff],
    responses=responses(401, 403, 422, 429),
    summary="List my handoffs",
)
def list_handoffs(
    request: Request,
    caller: TierTwo,
    # A code, not the status list: an unknown status finds nothing, as it always has.
    status: Annotated[
        str | None,
        Query(min_length=1, max_length=16, pattern=CODE_PATTERN, description="e.g. requested"),
    ] = None,
    before: Annotated[Instant | None, Query(description="requested before (paging)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ProviderHandoff]:
    stmt = select(HandoffRow).where(HandoffRow.provider_id == caller.partner_id)
    if status is not None:
        stmt = stmt.where(HandoffRow.status == status)
    if before is not None:
        stmt = stmt.where(col(HandoffRow.requested_at) < utc(before))
    stmt = stmt.order_by(col(HandoffRow.requested_at).desc(), col(HandoffRow.handoff_id))
    with Session(deps(request).engine) as session:
        rows = list(session.exec(stmt.limit(limit)))
        referrals = {
            r.referral_id: r
            for r in session.exec(
                select(ReferralRow).where(
                    col(ReferralRow.referral_id).in_({h.referral_id for h in rows})
                )
            )
        }
    return [_shown(row, referrals.get(row.referral_id)) for row in rows]


@router.get(
    "/handoffs/{handoff_id}",
    response_model=ProviderHandoff,
    responses=responses(401, 403, 404, 429),
    summary="Read one of my handoffs",
)
def get_handoff(handoff_id: IdPath, request: Request, caller: TierTwo) -> ProviderHandoff:
    with Session(deps(request).engine) as session:
        row = session.get(HandoffRow, handoff_id)
        if row is None or row.provider_id != caller.partner_id:
            raise not_found()
        return _shown(row, session.get(ReferralRow, row.referral_id))


def _shown(row: HandoffRow, referral: ReferralRow | None) -> ProviderHandoff:
    deadlines = json.loads(referral.deadlines) if referral else {}
    respond_by = deadlines.get(f"provider_response:{row.handoff_id}")
    return ProviderHandoff(
        **row.model_dump(),
        respond_by=respond_by,
        support_level=referral.support_level if referral else None,
    )


# Contact details -----------------------------------------------------------------------------

# Only while the handoff is live: a rejected, cancelled (consent withdrawn, episode ended),
# completed or failed handoff gives the provider no further access to the person.
_CONTACTABLE = ("requested", "accepted", "in-progress", "on-hold")


@router.get(
    "/handoffs/{handoff_id}/contact",
    response_model=Contact,
    responses=responses(401, 403, 404, 422, 429, 503),
    summary="The person's contact details for a live handoff (audited)",
)
async def contact(handoff_id: IdPath, request: Request, caller: TierTwo) -> Contact:
    row = await handoff_of(facts_of(request), caller, handoff_id)
    access = Access(caller.actor_id, caller.partner_id, "provider_contact")
    if row.status not in _CONTACTABLE:
        # The provider's access ended with its handoff: refuse as if there were none,
        # and record the attempt (it is this provider's own former handoff).
        try:
            await asyncio.to_thread(deps(request).people.refused, row.referral_id, access)
        except AuditFailed:
            raise audit_failed() from None
        raise not_found()
    try:
        person = await asyncio.to_thread(deps(request).people.get, row.referral_id, access)
    except AuditFailed:
        raise audit_failed() from None
    if person is None:
        raise not_found()
    return Contact(**{name: person.get(name) for name in Contact.model_fields})


# Responses -----------------------------------------------------------------------------------


@router.post(
    "/handoffs/{handoff_id}/accept",
    status_code=202,
    response_model=Submitted,
    responses=ACCEPTED,
    summary="Accept a handoff",
)
async def accept(handoff_id: IdPath, request: Request, caller: TierTwo) -> Submitted:
    return await respond(request, caller, handoff_id, "accept")


@router.post(
    "/handoffs/{handoff_id}/start",
    status_code=202,
    response_model=Submitted,
    responses=ACCEPTED,
    summary="Say the service has started for the person (the handoff is in progress)",
)
async def start(handoff_id: IdPath, request: Request, caller: TierTwo) -> Submitted:
    """For a service that begins before (or without) an attendance report: an
    assessment, a first call. The first attendance report moves the handoff on too."""
    return await respond(request, caller, handoff_id, "start")


@router.post(
    "/handoffs/{handoff_id}/reject",
    status_code=202,
    response_model=Submitted,
    responses=ACCEPTED,
    summary="Reject a handoff, with a reason code",
)
async def reject(
    handoff_id: IdPath, body: Rejection, request: Request, caller: TierTwo
) -> Submitted:
    await check_strictly(request, Rejection)
    return await respond(request, caller, handoff_id, "reject", reason_code=body.reason_code)


@router.post(
    "/handoffs/{handoff_id}/waitlist",
    status_code=202,
    response_model=Submitted,
    responses=ACCEPTED,
    summary="Put a handoff on the waiting list, with the expected wait's band",
)
async def waitlist(
    handoff_id: IdPath, body: Waitlist, request: Request, caller: TierTwo
) -> Submitted:
    await check_strictly(request, Waitlist)
    return await respond(request, caller, handoff_id, "waitlist", waitlist_band=body.waitlist_band)


@router.post(
    "/handoffs/{handoff_id}/complete",
    status_code=202,
    response_model=Submitted,
    responses=ACCEPTED,
    summary="Report a handoff completed, with what was delivered",
)
async def complete(
    handoff_id: IdPath, body: Completion, request: Request, caller: TierTwo
) -> Submitted:
    await check_strictly(request, Completion)
    return await respond(
        request,
        caller,
        handoff_id,
        "complete",
        delivered_code=body.delivered_code,
        sessions_delivered=body.sessions_delivered,
    )


async def respond(
    request: Request,
    caller: Caller,
    handoff_id: str,
    decision: provider.ProviderDecision,
    reason_code: str | None = None,
    waitlist_band: WaitlistBand | None = None,
    delivered_code: str | None = None,
    sessions_delivered: int | None = None,
) -> Submitted:
    facts = facts_of(request)
    row = await handoff_of(facts, caller, handoff_id)
    data = provider.ProviderResponse(
        handoff_id=handoff_id,
        referral_id=row.referral_id,
        provider_id=caller.partner_id,
        decision=decision,
        reason_code=reason_code,
        waitlist_band=waitlist_band,
        delivered_code=delivered_code,
        sessions_delivered=sessions_delivered,
        occurred_at=datetime.now(UTC),
    )
    event_id = response_event_id(
        caller.partner_id,
        handoff_id,
        decision,
        reason_code,
        waitlist_band,
        delivered_code,
        sessions_delivered,
    )
    return await submit(facts, event_id, data)


# Attendance: its own module, under this prefix.
router.include_router(provider_attendance.router)
