"""The referrer hears back: its status view of a referral, and the message back to the
GP record as a FHIR Bundle.

The status view (``GET /referrals/{id}/status`` and the list) is projected from the
referral's lifecycle events in the outbox (the archive of every event Linkway raised:
``pathway.referrer``), so a declined referral shows the decline's reason, coded and in
words, and every milestone with its date. Nothing comes from the personal-data store.

``GET /referrals/{id}/message-back`` is for the referring organisation only (role
``referrer``, its own referrals: any other answers 404). It carries the person's NHS
number, read from the personal-data store with an audited read (purpose
``message_back``), so that the GP system can file it; no event ever does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session, col, select

from activities.readmodel import EpisodeRow, ReferralRow
from api import schemas
from api.auth import Caller, require
from api.cursor import utc
from api.deps import deps
from api.fhir import FHIR_JSON
from api.fhir.message_back import Referral, build
from api.params import IdPath
from api.people import audit_failed
from api.personal_data import Access, AuditFailed
from api.problems import responses
from api.scope import visible
from messaging.outbox import OutboxRow
from pathway.referrer import MILESTONES, ReferrerView, project

router = APIRouter(prefix="/referrals", tags=["referrals"])
Referrer = Annotated[Caller, Depends(require("referrer"))]
PURPOSE = "message_back"


def views(session: Session, rows: Iterable[ReferralRow]) -> dict[str, ReferrerView]:
    """The referrer's view of each referral's current episode, in one query."""
    by_id = {row.referral_id: row for row in rows}
    if not by_id:
        return {}
    events: dict[str, list[tuple[str, dict[str, Any]]]] = {rid: [] for rid in by_id}
    found = session.exec(
        select(OutboxRow.key, OutboxRow.type, OutboxRow.payload)
        .where(col(OutboxRow.key).in_(by_id), col(OutboxRow.type).in_(MILESTONES))
        .order_by(col(OutboxRow.seq))
    )
    for key, event_type, payload in found:
        events[key].append((event_type, json.loads(payload)["data"]))
    return {
        rid: project(events[rid], row.episode, row.consent_to_share) for rid, row in by_id.items()
    }


def status(
    row: ReferralRow, episode: EpisodeRow | None, view: ReferrerView
) -> schemas.ReferralStatus:
    return schemas.ReferralStatus(
        referral_id=row.referral_id,
        episode=row.episode,
        stage=row.stage,
        opened_at=row.opened_at,
        ended_at=episode.ended_at if episode else None,
        dormant_reason=episode.dormant_reason if episode else None,
        status=view.status,
        reason=schemas.CodedReason(**vars(view.reason)) if view.reason else None,
        milestones=[
            schemas.ReferrerMilestone(
                status=m.status,
                display=m.display,
                at=m.at,
                reason=schemas.CodedReason(**vars(m.reason)) if m.reason else None,
                snomed_code=m.snomed[0] if m.snomed else None,
            )
            for m in view.milestones
        ],
        summary=schemas.CompletionSummary(**vars(view.summary)) if view.summary else None,
    )


@router.get(
    "/{referral_id}/message-back",
    response_class=Response,
    responses={
        **responses(401, 403, 404, 429, 503),
        200: {
            "content": {FHIR_JSON: {"schema": {"type": "object"}}},
            "description": "A FHIR R4 message Bundle for the GP record (docs/fhir.md)",
        },
    },
    summary="The message back to the GP record: a FHIR Bundle (referrer only; audited)",
)
async def message_back(referral_id: IdPath, request: Request, caller: Referrer) -> Response:
    d = deps(request)
    with Session(d.engine) as session:
        row = visible(session, caller, referral_id)
        view = views(session, [row])[row.referral_id]
    access = Access(caller.actor_id, caller.partner_id, PURPOSE)
    try:
        person = await asyncio.to_thread(d.people.get, row.referral_id, access) or {}
    except AuditFailed:
        raise audit_failed() from None
    bundle = build(
        Referral(
            referral_id=row.referral_id,
            episode=row.episode,
            opened_at=utc(row.opened_at),
            referrer_partner_id=caller.partner_id,
            nhs_number=person.get("nhs_number"),
        ),
        view,
    )
    return Response(
        bundle.model_dump_json(),
        media_type=FHIR_JSON,
        headers={"Cache-Control": "no-store"},
    )
