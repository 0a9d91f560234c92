"""Handoffs by provider and service, and why they were rejected, waitlisted or failed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reporting import stats
from reporting.kpis.view import (
    HO,
    SES,
    TITLES,
    Table,
    View,
    count_if,
)

HANDOFF_COUNTS = (
    "requested",
    "accepted",
    "rejected",
    "waitlisted",
    "attended",
    "failed",
    "late_response",
    "sessions_attended",
    "sessions_dna",
)


def _service(h: sa.FromClause) -> Any:
    return sa.func.coalesce(h.c.service_id, "unknown")


def handoffs(v: View) -> Table:
    service = _service(HO)
    q = (
        sa.select(
            HO.c.provider_id,
            service.label("service"),
            sa.func.count(),
            count_if(sa.or_(HO.c.accepted, HO.c.started)),
            count_if(sa.and_(HO.c.rejected_reason.is_not(None), sa.not_(HO.c.started))),
            count_if(HO.c.waitlist_band.is_not(None)),
            count_if(HO.c.started),
            count_if(HO.c.failed_reason.is_not(None)),
            count_if(HO.c.response_overdue),
        )
        .where(v.of_episode(HO))
        .group_by(HO.c.provider_id, service)
    )
    by: dict[tuple[str, str], dict[str, int]] = {}
    for provider, svc, *counts in v.rows(q):
        by[provider, svc] = dict(zip(HANDOFF_COUNTS[:7], counts, strict=True))
        by[provider, svc].update(sessions_attended=0, sessions_dna=0)
    h = HO.alias()
    service = _service(h)
    q = (
        sa.select(
            h.c.provider_id,
            service.label("service"),
            count_if(SES.c.status == "attended"),
            count_if(SES.c.status == "did_not_attend"),
        )
        .select_from(SES.join(h, h.c.handoff_id == SES.c.handoff_id))
        .where(*v.session_where(h))
        .group_by(h.c.provider_id, service)
    )
    for provider, svc, attended, dna in v.rows(q):
        by[provider, svc].update(sessions_attended=attended, sessions_dna=dna)
    rows = []
    for (provider, svc), c in sorted(by.items()):
        booked = c["sessions_attended"] + c["sessions_dna"]
        rows.append(
            {
                "provider_id": provider,
                "service_id": svc,
                **{k: c[k] for k in HANDOFF_COUNTS},
                "dna_rate_pct": stats.pct(c["sessions_dna"], booked),
            }
        )
    return Table(
        "handoffs",
        TITLES["handoffs"],
        ["provider_id", "service_id", *HANDOFF_COUNTS, "dna_rate_pct"],
        rows,
        counts=HANDOFF_COUNTS,
        derived={"dna_rate_pct": "sessions_dna"},
    )


def handoff_reasons(v: View) -> Table:
    service = _service(HO)
    answers: dict[str, tuple[Any, list[Any]]] = {
        "rejected": (
            HO.c.rejected_reason,
            [HO.c.rejected_reason.is_not(None), sa.not_(HO.c.started)],
        ),
        "waitlisted": (HO.c.waitlist_band, [HO.c.waitlist_band.is_not(None)]),
        "failed": (HO.c.failed_reason, [HO.c.failed_reason.is_not(None)]),
    }
    counts: dict[tuple[str, str, str, str], int] = {}
    for answer, (reason, where) in answers.items():
        q = (
            sa.select(HO.c.provider_id, service.label("service"), reason, sa.func.count())
            .where(v.of_episode(HO), *where)
            .group_by(HO.c.provider_id, service, reason)
        )
        for provider, svc, why, n in v.rows(q):
            counts[provider, svc, answer, why] = n
    rows = [
        {
            "provider_id": p,
            "service_id": s,
            "answer": a,
            "reason": reason,
            "handoffs": n,
            "no_capacity": reason in ("no_capacity", "full", "over_3_months"),
        }
        for (p, s, a, reason), n in sorted(counts.items())
    ]
    return Table(
        "handoff_reasons",
        TITLES["handoff_reasons"],
        ["provider_id", "service_id", "answer", "reason", "handoffs", "no_capacity"],
        rows,
        counts=("handoffs",),
        group_by=("provider_id", "service_id"),
    )
