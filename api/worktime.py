"""Link workers' time and caseload capacity, from the read model (never from Temporal).

- ``GET /referrals/{id}/activities``: the activities logged for one person, and their sum;
- ``GET /activities/summary``: time, sessions and mix per person, link worker or partner;
- ``GET /caseload/capacity``: per link worker, open cases, actions due and overdue,
  people started in the last 12 months against the profile's annual capacity, and the
  time logged this month.

Scope as everywhere (``api.scope``): a Tier One manager sees their partner's localities
(their team), a contract manager or admin every partner's; ``link_worker_id=me`` narrows
to the caller's own. A plain Tier One link worker (a token without the ``manager``
claim, ``api.auth``) sees only their own time and capacity row: naming another link
worker gives an empty list, as any object outside a caller's scope is left out of a list.
Pseudonymous only: an activity's note is read through the notes route.
Deleted activities count nowhere; a corrected one counts as corrected.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from activities.readmodel import ActivityRow, EpisodeRow, ReferralRow
from api import schemas
from api.auth import Caller, require
from api.cursor import Instant, utc
from api.deps import deps
from api.params import IdPath
from api.problems import Problem, responses
from api.scope import scoped, visible
from events.ids import ID_PATTERN, MAX_ID_LENGTH

router = APIRouter(tags=["caseload"])
Viewer = Annotated[Caller, Depends(require("tier_one", "contract_manager", "admin"))]
WorkerQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description='a link worker\'s id, or "me" for the caller',
    ),
]
DUE_WINDOW = timedelta(days=7)
YEAR = timedelta(days=365)


@router.get(
    "/referrals/{referral_id}/activities",
    response_model=schemas.ActivityList,
    responses=responses(401, 403, 404, 429),
    summary="The activities logged for one person, newest first, and their time summary",
)
def referral_activities(
    referral_id: IdPath, request: Request, caller: Viewer
) -> schemas.ActivityList:
    with Session(deps(request).engine) as session:
        row = visible(session, caller, referral_id)
        activities = session.exec(
            select(ActivityRow)
            .where(ActivityRow.referral_id == row.referral_id, col(ActivityRow.deleted).is_(False))
            .order_by(col(ActivityRow.started_at).desc(), col(ActivityRow.activity_id))
        ).all()
    summary = _Sums()
    for a in activities:
        summary.add(a.activity_type, a.direct, a.minutes, 1)
    return schemas.ActivityList(
        items=[schemas.Activity(**a.model_dump()) for a in activities],
        summary=summary.out(row.referral_id),
    )


@router.get(
    "/activities/summary",
    response_model=schemas.TimeSummaryList,
    responses=responses(401, 403, 422, 429),
    summary="Time spent, sessions and mix per person, link worker or partner",
)
def activity_summary(
    request: Request,
    caller: Viewer,
    by: Annotated[
        Literal["referral", "link_worker", "partner"], Query(description="what to sum over")
    ] = "link_worker",
    since: Annotated[Instant | None, Query(description="activities started from then")] = None,
    until: Annotated[Instant | None, Query(description="activities started before then")] = None,
    link_worker_id: WorkerQuery = None,
) -> schemas.TimeSummaryList:
    key = {
        "referral": ActivityRow.referral_id,
        "link_worker": ActivityRow.link_worker_id,
        "partner": ActivityRow.partner_id,
    }[by]
    start, end = (utc(since) if since else None), (utc(until) if until else None)
    if start and end and start >= end:
        raise Problem(422, "Invalid request", "since must be before until")
    worker = _worker(caller, link_worker_id)
    if worker is None and caller.own_only:
        return schemas.TimeSummaryList(since=start, until=end, items=[])
    with Session(deps(request).engine) as session:
        rows = session.execute(
            sa_select(
                col(key),
                col(ActivityRow.activity_type),
                col(ActivityRow.direct),
                func.sum(ActivityRow.minutes),
                func.count(),
            )
            .where(*_activities(caller, worker, start, end))
            .group_by(col(key), col(ActivityRow.activity_type), col(ActivityRow.direct))
        ).all()
    sums: dict[str, _Sums] = defaultdict(_Sums)
    for name, activity_type, direct, minutes, sessions in rows:
        sums[name].add(activity_type, direct, int(minutes), int(sessions))
    return schemas.TimeSummaryList(
        since=start,
        until=end,
        items=[sums[name].out(name) for name in sorted(sums)],
    )


@router.get(
    "/caseload/capacity",
    response_model=schemas.CapacityList,
    responses=responses(401, 403, 422, 429),
    summary="Caseload capacity per link worker: open cases, actions, starts, time",
)
def capacity(
    request: Request, caller: Viewer, link_worker_id: WorkerQuery = None
) -> schemas.CapacityList:
    d = deps(request)
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    worker = _worker(caller, link_worker_id)
    if worker is None and caller.own_only:
        return schemas.CapacityList(items=[])
    cases = scoped(select(ReferralRow), caller).where(col(ReferralRow.link_worker_id).is_not(None))
    if worker:
        cases = cases.where(ReferralRow.link_worker_id == worker)
    with Session(d.engine) as session:
        referrals = session.exec(cases).all()
        # Episodes opened in the last 12 months, bar those declined at triage, counted
        # for the link worker the referral has now.
        starts = session.exec(
            select(col(ReferralRow.link_worker_id), func.count())
            .join(EpisodeRow, col(EpisodeRow.referral_id) == col(ReferralRow.referral_id))
            .where(
                col(ReferralRow.referral_id).in_(
                    cases.with_only_columns(col(ReferralRow.referral_id))
                ),
                col(EpisodeRow.opened_at) >= now - YEAR,
                func.coalesce(col(EpisodeRow.dormant_reason), "") != "declined",
            )
            .group_by(col(ReferralRow.link_worker_id))
        ).all()
        logged = session.exec(
            select(col(ActivityRow.link_worker_id), func.sum(ActivityRow.minutes))
            .where(*_activities(caller, worker, month_start, None))
            .group_by(col(ActivityRow.link_worker_id))
        ).all()
    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"open": 0, "due": 0, "overdue": 0, "partner": ""}
    )
    for r in referrals:
        counts = per[r.link_worker_id or ""]
        counts["partner"] = r.partner_id
        if r.stage == "dormant":
            continue
        counts["open"] += 1
        counts["overdue"] += len(json.loads(r.overdue))
        counts["due"] += sum(
            now <= utc(datetime.fromisoformat(at)) < now + DUE_WINDOW
            for at in json.loads(r.deadlines).values()
        )
    started = {name: int(n) for name, n in starts}
    minutes = {name: int(n or 0) for name, n in logged}
    annual = d.config.annual_caseload_capacity
    items = []
    for name in sorted(set(per) | set(minutes)):
        counts = per[name]
        items.append(
            schemas.Capacity(
                link_worker_id=name,
                partner_id=counts["partner"] or caller.partner_id,
                open_cases=counts["open"],
                actions_due=counts["due"],
                actions_overdue=counts["overdue"],
                started_last_12_months=started.get(name, 0),
                annual_capacity=annual,
                capacity_used=round(started.get(name, 0) / annual, 3),
                minutes_this_month=minutes.get(name, 0),
            )
        )
    return schemas.CapacityList(items=items)


def _worker(caller: Caller, link_worker_id: str | None) -> str | None:
    """Whose rows the caller asks for. A plain link worker gets their own, whatever they
    name: ``None`` if they named someone else (nothing of theirs is visible)."""
    wanted = caller.actor_id if link_worker_id == "me" else link_worker_id
    if caller.own_only:
        return caller.actor_id if wanted in (None, caller.actor_id) else None
    return wanted


def _activities(
    caller: Caller, worker: str | None, start: datetime | None, end: datetime | None
) -> list[Any]:
    """Conditions for the caller's visible, not deleted activities, optionally of one
    link worker and started in [start, end)."""
    where: list[Any] = [col(ActivityRow.deleted).is_(False)]
    if caller.role == "tier_one":
        where.append(col(ActivityRow.locality).in_(caller.localities))
    if worker:
        where.append(ActivityRow.link_worker_id == worker)
    if start:
        where.append(col(ActivityRow.started_at) >= start)
    if end:
        where.append(col(ActivityRow.started_at) < end)
    return where


class _Sums:
    def __init__(self) -> None:
        self.sessions = self.minutes = self.direct = 0
        self.by_type: dict[str, int] = defaultdict(int)

    def add(self, activity_type: str, direct: bool, minutes: int, sessions: int) -> None:
        self.sessions += sessions
        self.minutes += minutes
        self.direct += minutes if direct else 0
        self.by_type[activity_type] += minutes

    def out(self, key: str) -> schemas.TimeSummary:
        return schemas.TimeSummary(
            key=key,
            sessions=self.sessions,
            minutes=self.minutes,
            direct_minutes=self.direct,
            indirect_minutes=self.minutes - self.direct,
            by_type=dict(sorted(self.by_type.items())),
        )
