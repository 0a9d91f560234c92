"""Distal outcomes: each person's use of other services (out-of-hours contacts, A&E
attendances, non-elective admissions, care packages, GP appointments) in a window of
whole months before their referral against the same number of months after
(``linkway.outcome.distal_change.v1``, docs/distal-feed.md), for episodes received in
the period. The database adds up counts, sums and squares; the means and the interval
are worked out from those, exactly."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reporting import stats
from reporting.kpis.view import DIS, TITLES, Table, View, count_if


def distal_outcomes(v: View) -> Table:
    change = DIS.c.after_count - DIS.c.before_count
    q = (
        sa.select(
            DIS.c.measure,
            DIS.c.window_months,
            sa.func.count(),
            sa.func.sum(DIS.c.before_count),
            sa.func.sum(DIS.c.after_count),
            sa.func.sum(change * change),
            count_if(DIS.c.after_count < DIS.c.before_count),
            count_if(DIS.c.after_count > DIS.c.before_count),
        )
        .where(v.of_episode(DIS))
        .group_by(DIS.c.measure, DIS.c.window_months)
    )
    rows: list[dict[str, Any]] = []
    for measure, window, n, before, after, squares, fewer, more in sorted(
        tuple(r) for r in v.rows(q)
    ):
        n, before, after = int(n), int(before or 0), int(after or 0)
        mean, low, high = stats.mean_ci_sums(n, after - before, int(squares or 0))
        rows.append(
            {
                "measure": measure,
                "window_months": int(window),
                "people": n,
                "before": before,
                "after": after,
                "mean_before": stats.r(before / n, 2),
                "mean_after": stats.r(after / n, 2),
                "mean_change": stats.r(mean, 2),
                "mean_change_ci_low": stats.r(low, 2),
                "mean_change_ci_high": stats.r(high, 2),
                "pct_change": stats.pct(after - before, before) if before else None,
                "reduced": int(fewer),
                "pct_reduced": stats.pct(int(fewer), n),
                "increased": int(more),
            }
        )
    return Table(
        "distal_outcomes",
        TITLES["distal_outcomes"],
        [
            "measure",
            "window_months",
            "people",
            "before",
            "after",
            "mean_before",
            "mean_after",
            "mean_change",
            "mean_change_ci_low",
            "mean_change_ci_high",
            "pct_change",
            "reduced",
            "pct_reduced",
            "increased",
        ],
        rows,
        counts=("people", "reduced", "increased"),
        derived={
            "before": "people",
            "after": "people",
            "mean_before": "people",
            "mean_after": "people",
            "mean_change": "people",
            "mean_change_ci_low": "people",
            "mean_change_ci_high": "people",
            "pct_change": "people",
            "pct_reduced": "reduced",
        },
        group_by=("measure", "window_months"),
    )
