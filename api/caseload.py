"""Caseloads: the referrals a partner or a link worker is working, soonest due first.

Served from the read model (never from Temporal), filtered by partner, locality, link
worker, stage and due dates, and paged by an opaque cursor. A Tier One partner sees its
own localities; a contract manager or admin every partner's, pseudonymous fields only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, literal, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from activities.readmodel import ReferralRow
from api import schemas
from api.auth import Caller, require
from api.cursor import Instant, Limit, decode, encode, utc
from api.deps import deps
from api.params import IdQuery
from api.problems import Problem, responses
from api.scope import scoped
from events.ids import ID_PATTERN, MAX_ID_LENGTH
from events.referral import Stage

router = APIRouter(tags=["caseload"])
Worker = Annotated[Caller, Depends(require("tier_one", "contract_manager", "admin"))]
# Referrals with nothing due sort last: their due time counts as the end of time.
NEVER = datetime(9999, 12, 31, tzinfo=UTC)


@router.get(
    "/caseload",
    response_model=schemas.CaseloadPage,
    responses=responses(401, 403, 422, 429),
    summary="A caseload: referrals soonest due first, filtered and paged",
)
def caseload(
    request: Request,
    caller: Worker,
    partner_id: IdQuery = None,
    locality: IdQuery = None,
    link_worker_id: str | None = Query(
        default=None,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description='a link worker\'s id, or "me" for the caller',
    ),
    stage: Stage | None = None,
    due_before: Annotated[Instant | None, Query(description="next action due by then")] = None,
    due_after: Annotated[Instant | None, Query(description="next action due from then")] = None,
    overdue: Annotated[bool | None, Query(description="only those with an action overdue")] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
    limit: Limit = 50,
) -> schemas.CaseloadPage:
    due = func.coalesce(col(ReferralRow.next_due_at), literal(NEVER, UTCDateTime()))
    query = scoped(select(ReferralRow), caller).order_by(due, col(ReferralRow.referral_id))
    if partner_id:
        query = query.where(ReferralRow.partner_id == partner_id)
    if locality:
        query = query.where(ReferralRow.locality == locality)
    if link_worker_id:
        worker = caller.actor_id if link_worker_id == "me" else link_worker_id
        query = query.where(ReferralRow.link_worker_id == worker)
    if stage:
        query = query.where(ReferralRow.stage == stage)
    if due_before:
        query = query.where(col(ReferralRow.next_due_at) <= utc(due_before))
    if due_after:
        query = query.where(col(ReferralRow.next_due_at) >= utc(due_after))
    if overdue is not None:
        has_overdue = col(ReferralRow.overdue) != "[]"
        query = query.where(has_overdue if overdue else ~has_overdue)
    if cursor:
        last_due, last_id = decode(cursor, 2)
        try:
            after = utc(datetime.fromisoformat(last_due))
        except (ValueError, Problem):
            raise Problem(422, "Bad cursor", "pass back a next_cursor as it was given") from None
        query = query.where(
            or_(due > after, (due == after) & (col(ReferralRow.referral_id) > last_id))
        )
    with Session(deps(request).engine) as session:
        rows = list(session.exec(query.limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        last = page[-1]
        due_at = utc(last.next_due_at) if last.next_due_at else NEVER
        next_cursor = encode(due_at.isoformat(), last.referral_id)
    return schemas.CaseloadPage(items=[_item(row) for row in page], next_cursor=next_cursor)


def _item(row: ReferralRow) -> schemas.CaseloadItem:
    return schemas.CaseloadItem(
        **row.model_dump(exclude={"deadlines", "overdue", "outcomes", "handoffs", "goals"}),
        actions_due=json.loads(row.overdue),
    )
