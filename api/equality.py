"""Equality monitoring: the person's own answers (optional, every one), and the report a
commissioner sees.

The answers are special-category data. They are written and read only through the
personal-data store (encrypted, every access audited), by the Tier One partner holding
the case, like the person's details (``api.people``); they never reach an event, the read
model, a workflow or a log. The IMD decile is derived from the postcode given, with the
lookup shipped as data (``equality.imd``), whenever the answers are read, so loading the
full lookup later fills it in for everyone.

``GET /equality/report`` counts the answers with small-number suppression
(``equality.suppression``): a contract manager sees every partner's people, or one
partner's; a Tier One partner its own. The decrypting is audited as one aggregate read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from api.auth import Caller, require
from api.deps import deps
from api.params import IdPath, IdQuery
from api.people import PurposeQuery, _row, audit_failed, stated, unwritten
from api.personal_data import Access, AuditFailed
from api.problems import Problem, responses
from api.strict import check_strictly
from equality import imd
from equality.categories import EqualityMonitoring
from equality.report import EqualityReport, report

router = APIRouter(tags=["equality"])
LinkWorker = Annotated[Caller, Depends(require("tier_one"))]
Reader = Annotated[Caller, Depends(require("contract_manager", "tier_one"))]


class EqualityAnswers(EqualityMonitoring):
    """The answers as given, and the IMD decile their postcode falls in (None when no
    postcode was given or the lookup does not hold it)."""

    imd_decile: int | None = None
    imd_source: str


def lookup(request: Request) -> imd.ImdLookup:
    configured = request.app.state.settings.imd_lookup
    return imd.load(str(configured) if configured else None)


@router.put(
    "/referrals/{referral_id}/equality",
    status_code=204,
    response_class=Response,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 503),
    summary="Replace the person's equality monitoring answers (audited write)",
)
async def put_equality(
    referral_id: IdPath, body: EqualityMonitoring, request: Request, caller: LinkWorker
) -> Response:
    d = deps(request)
    await check_strictly(request, EqualityMonitoring)
    row = _row(d, caller, referral_id)
    access = Access(caller.actor_id, caller.partner_id, "equality_monitoring")
    answers = body.model_dump(mode="json", exclude_none=True)
    try:
        d.people.put_equality(row.referral_id, row.partner_id, answers, access)
    except SQLAlchemyError:
        raise unwritten() from None
    return Response(status_code=204)


@router.get(
    "/referrals/{referral_id}/equality",
    response_model=EqualityAnswers,
    responses=responses(400, 401, 403, 404, 422, 429, 503),
    summary="The person's equality monitoring answers (audited read)",
)
def get_equality(
    referral_id: IdPath, request: Request, caller: LinkWorker, purpose: PurposeQuery = None
) -> EqualityAnswers:
    d = deps(request)
    why = stated(purpose)
    row = _row(d, caller, referral_id)
    try:
        answers = d.people.equality(
            row.referral_id, Access(caller.actor_id, caller.partner_id, why)
        )
    except AuditFailed:
        raise audit_failed() from None
    if answers is None:
        raise Problem(404, "Not found", "no equality monitoring answers for this referral")
    table = lookup(request)
    return EqualityAnswers(
        **answers, imd_decile=table.decile(answers.get("postcode")), imd_source=table.source
    )


@router.get(
    "/equality/report",
    response_model=EqualityReport,
    responses=responses(400, 401, 403, 422, 429, 503),
    summary="Equality monitoring counts, with small-number suppression",
)
def get_report(request: Request, caller: Reader, partner: IdQuery = None) -> BaseModel:
    """Counts under 5 are shown as "<5", and further cells are hidden where the total
    would otherwise give a hidden one away (docs/equality.md)."""
    d = deps(request)
    if caller.role == "tier_one":
        partners: list[str] | None = (
            [caller.partner_id] if partner in (None, caller.partner_id) else []
        )
    else:
        partners = None if partner is None else [partner]
    access = Access(caller.actor_id, caller.partner_id, "equality_report")
    try:
        answers = d.people.equality_answers(partners, access)
    except AuditFailed:
        raise audit_failed() from None
    return report(answers, lookup(request))
