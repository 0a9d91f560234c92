"""Referrals against the trajectory, by source and practice; triage decisions."""

from __future__ import annotations

import sqlalchemy as sa

from reporting import stats
from reporting.kpis.view import (
    EP,
    REF,
    TITLES,
    Table,
    View,
)
from reporting.suppression import TOTAL


def referrals_trajectory(v: View) -> Table:
    q = sa.select(REF.c.month, sa.func.count()).where(*v.referral_where()).group_by(REF.c.month)
    received = {month: n for month, n in v.rows(q)}
    f = v.filters
    expected = {
        m: n
        for m, n in v.ctx.profile.referral_trajectory.items()
        if (f.start is None or m >= f.start.strftime("%Y-%m"))
        and (f.end is None or m <= f.end.strftime("%Y-%m"))
    }
    rows = []
    for month in sorted(set(received) | set(expected)):
        got, want = received.get(month, 0), expected.get(month)
        rows.append(
            {
                "month": month,
                "expected": want,
                "received": got,
                "difference": None if want is None else got - want,
                "pct_of_expected": stats.pct(got, want) if want else None,
            }
        )
    return Table(
        "referrals_trajectory",
        TITLES["referrals_trajectory"],
        ["month", "expected", "received", "difference", "pct_of_expected"],
        rows,
        counts=("received",),
        derived={"difference": "received", "pct_of_expected": "received"},
    )


def referrals_by_source(v: View) -> Table:
    q = (
        sa.select(REF.c.source, REF.c.kind, sa.func.count())
        .where(*v.referral_where())
        .group_by(REF.c.source, REF.c.kind)
    )
    counts = {(source, kind): n for source, kind, n in v.rows(q)}
    rows = []
    for source in sorted({s for s, _ in counts}):
        by_kind = {k: counts.get((source, k), 0) for k in ("received", "reentered", "joined")}
        rows.append(
            {
                "source": source,
                "known_source": source in v.ctx.profile.referral_sources,
                "new": by_kind["received"],
                "reentered": by_kind["reentered"],
                "joined": by_kind["joined"],
                "referrals": sum(by_kind.values()),
            }
        )
    return Table(
        "referrals_by_source",
        TITLES["referrals_by_source"],
        ["source", "known_source", "new", "reentered", "joined", "referrals"],
        rows,
        counts=("new", "reentered", "joined", "referrals"),
    )


def referrals_by_practice(v: View) -> Table:
    q = (
        sa.select(REF.c.referrer_org_id, REF.c.source, sa.func.count())
        .where(*v.referral_where())
        .group_by(REF.c.referrer_org_id, REF.c.source)
    )
    rows = [
        {"referrer_org_id": org, "source": source, "referrals": n}
        for org, source, n in sorted(tuple(r) for r in v.rows(q))
    ]
    return Table(
        "referrals_by_practice",
        TITLES["referrals_by_practice"],
        ["referrer_org_id", "source", "referrals"],
        rows,
        counts=("referrals",),
    )


def triage(v: View) -> Table:
    decision = sa.case(
        (EP.c.declined_at.is_not(None), "declined"),
        (EP.c.accepted_at.is_not(None), "accepted"),
        else_="awaiting_triage",
    )
    reason = sa.case(
        (EP.c.declined_at.is_not(None), sa.func.coalesce(EP.c.decline_reason, "unspecified")),
        else_="",
    )
    q = (
        sa.select(decision.label("d"), reason.label("r"), sa.func.count())
        .where(*v.episode_where())
        .group_by(decision, reason)
    )
    counts = {(d, r): n for d, r, n in v.rows(q)}
    total = sum(counts.values())
    rows = [
        {"decision": d, "reason": reason or None, "episodes": n, "pct": stats.pct(n, total)}
        for (d, reason), n in sorted(counts.items())
    ]
    rows.append(
        {"decision": TOTAL, "reason": None, "episodes": total, "pct": stats.pct(total, total)}
    )
    return Table(
        "triage",
        TITLES["triage"],
        ["decision", "reason", "episodes", "pct"],
        rows,
        counts=("episodes",),
        derived={"pct": "episodes"},
    )
