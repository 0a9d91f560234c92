"""Data quality: what is missing, late or wrong; partner events refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from reporting.kpis.view import (
    DLQ,
    EP,
    HO,
    REF,
    SES,
    TITLES,
    Table,
    View,
    count_if,
)


def data_quality(v: View) -> Table:
    counts: Counter[tuple[str, str]] = Counter()

    def add(checks: Iterable[str], q: sa.Select[Any]) -> None:
        for partner, *found in v.rows(q):
            for check, n in zip(checks, found, strict=True):
                if n:
                    counts[check, partner] += n

    add(
        ("missing_baseline", "review_without_measures", "followup_without_measures"),
        sa.select(
            EP.c.partner_id,
            count_if(sa.and_(EP.c.assessed_at.is_not(None), EP.c.baseline_count == 0)),
            count_if(sa.and_(EP.c.reviewed_at.is_not(None), EP.c.review_measure_count == 0)),
            count_if(sa.and_(EP.c.followup_at.is_not(None), EP.c.followup_measure_count == 0)),
        )
        .where(*v.episode_where())
        .group_by(EP.c.partner_id),
    )
    known = sorted(v.ctx.profile.referral_sources)
    add(
        ("unknown_source",),
        sa.select(REF.c.partner_id, sa.func.count())
        .where(*v.referral_where(), REF.c.source.not_in(known))
        .group_by(REF.c.partner_id),
    )
    add(
        ("provider_response_late", "provider_response_missing"),
        sa.select(
            HO.c.provider_id,
            sa.func.count(),
            count_if(HO.c.status == "requested"),
        )
        .where(v.of_episode(HO), HO.c.response_overdue)
        .group_by(HO.c.provider_id),
    )
    h = HO.alias()
    add(
        ("attendance_corrected",),
        sa.select(SES.c.provider_id, sa.func.count())
        .select_from(SES.join(h, h.c.handoff_id == SES.c.handoff_id))
        .where(*v.session_where(h), SES.c.reports > 1)
        .group_by(SES.c.provider_id),
    )
    rows = [
        {"check": check, "partner_id": partner, "records": n}
        for (check, partner), n in sorted(counts.items())
    ]
    return Table(
        "data_quality",
        TITLES["data_quality"],
        ["check", "partner_id", "records"],
        rows,
        counts=("records",),
        group_by=("check",),
    )


def dead_letters(v: View) -> Table:
    where = v.month_in_period(DLQ.c.month)
    if v.filters.partner is not None:
        where.append(DLQ.c.partner_id == v.filters.partner)
    q = (
        sa.select(DLQ.c.partner_id, DLQ.c.topic, DLQ.c.reason, sa.func.count())
        .where(*where)
        .group_by(DLQ.c.partner_id, DLQ.c.topic, DLQ.c.reason)
    )
    rows = [
        {"partner_id": p, "topic": t, "reason": reason, "messages": n}
        for p, t, reason, n in sorted(tuple(r) for r in v.rows(q))
    ]
    # Messages, not people: not suppressed.
    return Table(
        "dead_letters",
        TITLES["dead_letters"],
        ["partner_id", "topic", "reason", "messages"],
        rows,
    )
