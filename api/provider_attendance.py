"""Attendance from Tier Two providers over HTTP: one session at a time, or a week's
sessions as a CSV upload (``api.attendance_csv``). The same facts as the Kafka event
``linkway.provider.attendance.v1``; their event ids are derived from what they say, so a
retried request or upload changes nothing twice. Mounted under ``/provider`` by
``api.providers``."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError

from api import attendance_csv
from api.auth import Caller
from api.cursor import utc
from api.params import IdPath
from api.problems import Problem, responses
from api.provider_common import ACCEPTED, TierTwo, facts_of, handoff_of, not_found, submit
from api.provider_schemas import (
    Attendance,
    BatchReport,
    RowError,
    RowResult,
    Submitted,
)
from api.strict import check_strictly
from events import provider
from inbound.provider_facts import (
    attendance_event_id,
    implausible_date,
)

router = APIRouter()


@router.post(
    "/handoffs/{handoff_id}/attendance",
    status_code=202,
    response_model=Submitted,
    responses=ACCEPTED,
    summary="Report one session's attendance",
)
async def report_attendance(
    handoff_id: IdPath, body: Attendance, request: Request, caller: TierTwo
) -> Submitted:
    await check_strictly(request, Attendance)
    facts = facts_of(request)
    row = await handoff_of(facts, caller, handoff_id)
    implausible = implausible_date(body.session_date, utc(row.requested_at))
    if implausible:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "session_date"), "msg": implausible}]
        )
    event_id, data = _attendance(
        caller, row.referral_id, handoff_id, body.session_date, body.status
    )
    return await submit(facts, event_id, data)


@router.post(
    "/attendance",
    response_model=BatchReport,
    responses={
        **responses(400, 401, 403, 413, 422, 429),
        415: {"description": "The upload is not Content-Type: text/csv"},
    },
    summary="Upload a CSV of sessions: good rows are applied, each bad row is reported",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "handoff_id,session_date,status\nh-1,2026-06-01,attended\n",
                }
            },
        }
    },
)
async def upload_attendance(request: Request, caller: TierTwo) -> BatchReport:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("text/csv", "text/plain"):
        raise Problem(415, "Unsupported media type", "send the CSV as Content-Type: text/csv")
    try:
        rows, bad = attendance_csv.parse(await request.body())
    except attendance_csv.CsvRejected as exc:
        raise Problem(422, "Unreadable upload", str(exc)) from None
    facts = facts_of(request)
    errors = [RowError(line=e.line, handoff_id=e.handoff_id, error=e.error) for e in bad]
    results: list[RowResult] = []
    # In file order, one at a time: a later row for the same session is a correction.
    for row in rows:
        try:
            handoff = await handoff_of(facts, caller, row.handoff_id)
            if row.referral_id not in (None, handoff.referral_id):
                raise not_found()
        except Problem as problem:
            errors.append(RowError(line=row.line, handoff_id=row.handoff_id, error=problem.detail))
            continue
        implausible = implausible_date(row.session_date, utc(handoff.requested_at))
        if implausible:
            errors.append(
                RowError(
                    line=row.line, handoff_id=row.handoff_id, error=f"session_date {implausible}"
                )
            )
            continue
        event_id, data = _attendance(
            caller, handoff.referral_id, row.handoff_id, row.session_date, row.status
        )
        submitted = await submit(facts, event_id, data)
        results.append(
            RowResult(
                line=row.line,
                handoff_id=row.handoff_id,
                session_date=row.session_date,
                status=row.status,
                event_id=event_id,
                duplicate=submitted.duplicate,
            )
        )
    return BatchReport(
        applied=sum(not r.duplicate for r in results),
        duplicates=sum(r.duplicate for r in results),
        rejected=len(errors),
        rows=results,
        errors=sorted(errors, key=lambda e: e.line),
    )


def _attendance(
    caller: Caller, referral_id: str, handoff_id: str, session_date: date, status: str
) -> tuple[str, provider.AttendanceReported]:
    data = provider.AttendanceReported.model_validate(
        {
            "handoff_id": handoff_id,
            "referral_id": referral_id,
            "provider_id": caller.partner_id,
            "session_date": session_date,
            "status": status,
            "occurred_at": datetime.now(UTC),
        }
    )
    return attendance_event_id(caller.partner_id, handoff_id, session_date, status), data
