"""The audit log of personal-data access, for the ``admin`` role: who read or wrote whose
record, for which partner, when and why. Newest first, paged by cursor."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session, col, select

from api import schemas
from api.auth import Caller, require
from api.cursor import Instant, Limit, decode, encode, utc
from api.deps import deps
from api.params import IdQuery
from api.personal_data import AuditRecord
from api.problems import Problem, responses

router = APIRouter(tags=["audit"])
Admin = Annotated[Caller, Depends(require("admin"))]


@router.get(
    "/audit",
    response_model=schemas.AuditPage,
    responses=responses(401, 403, 422, 429),
    summary="Personal-data access records, newest first",
)
def audit_log(
    request: Request,
    caller: Admin,
    referral_id: IdQuery = None,
    actor_id: IdQuery = None,
    partner_id: IdQuery = None,
    action: Literal["read", "write", "match"] | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    cursor: str | None = Query(default=None, min_length=1, max_length=100),
    limit: Limit = 50,
) -> schemas.AuditPage:
    query = select(AuditRecord).order_by(col(AuditRecord.id).desc())
    for column, value in (
        (AuditRecord.referral_id, referral_id),
        (AuditRecord.actor_id, actor_id),
        (AuditRecord.partner_id, partner_id),
        (AuditRecord.action, action),
    ):
        if value is not None:
            query = query.where(column == value)
    if since:
        query = query.where(col(AuditRecord.at) >= utc(since))
    if until:
        query = query.where(col(AuditRecord.at) < utc(until))
    if cursor:
        (before,) = decode(cursor, 1)
        # ASCII only: "²".isdigit() is true, and int("²") raises.
        if not (before.isascii() and before.isdigit()) or len(before) > 18:
            raise Problem(422, "Bad cursor", "pass back a next_cursor as it was given")
        query = query.where(col(AuditRecord.id) < int(before))
    with Session(deps(request).engine) as session:
        rows = list(session.exec(query.limit(limit + 1)))
    page = [schemas.AuditEntry.model_validate(r, from_attributes=True) for r in rows[:limit]]
    more = len(rows) > limit
    return schemas.AuditPage(items=page, next_cursor=encode(str(page[-1].id)) if more else None)
