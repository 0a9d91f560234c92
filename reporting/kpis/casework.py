"""Link worker activity (the casework activity log) and caseloads against capacity.

Activities are the episode's facts dated by when they started (``View.dated``): the
episode matches the filter's dimensions whatever its start date, the activity started in
the period. A deleted activity counts nowhere; a corrected one counts as corrected.
Caseloads are a snapshot on one day (the period's end, or today): the episodes open on
that day and the people started in the 365 days up to it, per link worker assigned now.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from reporting import stats
from reporting.kpis.view import ACTV, EP, TITLES, Table, View, count_if, local_midnight
from reporting.rows import TIME_ZONE
from reporting.suppression import TOTAL

YEAR = timedelta(days=365)
UNASSIGNED = "unassigned"  # an episode no link worker was assigned to


def _activities(v: View) -> list[Any]:
    """Not deleted, started in the period, of an episode matching the filters. Unfiltered,
    every activity's episode is there (its events make the episode's row), so the look-up
    per row is left out."""
    where = [sa.not_(ACTV.c.deleted), *v.in_period(ACTV.c.started_at)]
    if v.narrowed():
        where.append(v.of_episode(ACTV, period=False))
    # A partner's (or a contract's partners') own link workers' time only: an episode
    # that moved between partners keeps the time the other partner spent as theirs.
    if v.filters.partner is not None:
        where.append(ACTV.c.partner_id == v.filters.partner)
    if v.partners is not None:
        where.append(ACTV.c.partner_id.in_(v.partners) if v.partners else sa.false())
    return where


def _episode_key() -> Any:
    """An episode as one value (its referral id and number), to count distinct ones."""
    return ACTV.c.referral_id + "#" + sa.cast(ACTV.c.episode, sa.String)


def _sums(v: View, key: sa.ColumnElement[Any]) -> dict[tuple[str, str], dict[str, int]]:
    """Per partner and ``key``: distinct episodes (people), sessions, minutes and direct
    minutes, in one pass."""
    q = (
        sa.select(
            ACTV.c.partner_id,
            key,
            sa.func.count(sa.distinct(_episode_key())),
            sa.func.count(),
            sa.func.sum(ACTV.c.minutes),
            sa.func.sum(sa.case((ACTV.c.direct, ACTV.c.minutes), else_=0)),
        )
        .where(*_activities(v))
        .group_by(ACTV.c.partner_id, key)
    )
    out = {}
    for partner, name, people, sessions, minutes, direct_minutes in v.rows(q):
        out[partner, name] = {
            "people": int(people),
            "sessions": int(sessions or 0),
            "minutes": int(minutes or 0),
            "direct_minutes": int(direct_minutes or 0),
        }
    return out


def _partner_totals(
    v: View, sums: dict[tuple[str, str], dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Per partner: its rows' sessions and minutes added up, and its distinct episodes
    (one seen by two link workers, or in two activity types, counts once), read from an
    index alone."""
    totals: dict[str, dict[str, int]] = defaultdict(
        lambda: {"people": 0, "sessions": 0, "minutes": 0, "direct_minutes": 0}
    )
    for (partner, _), c in sums.items():
        for column in ("sessions", "minutes", "direct_minutes"):
            totals[partner][column] += c[column]
    q = (
        sa.select(ACTV.c.partner_id, sa.func.count(sa.distinct(_episode_key())))
        .where(*_activities(v))
        .group_by(ACTV.c.partner_id)
    )
    for partner, people in v.rows(q):
        totals[partner]["people"] = int(people)
    return dict(totals)


def _time_columns(c: dict[str, int]) -> dict[str, Any]:
    return {
        "people": c["people"],
        "sessions": c["sessions"],
        "minutes": c["minutes"],
        "direct_minutes": c["direct_minutes"],
        "indirect_minutes": c["minutes"] - c["direct_minutes"],
        "pct_direct": stats.pct(c["direct_minutes"], c["minutes"]),
    }


TIME_DERIVED = {
    "minutes": "people",
    "direct_minutes": "people",
    "indirect_minutes": "people",
    "pct_direct": "people",
}


def link_worker_activity(v: View) -> Table:
    by_worker = _sums(v, ACTV.c.link_worker_id)
    by_partner = _partner_totals(v, by_worker)
    rows = []
    for (partner, worker), c in sorted(by_worker.items()):
        rows.append({"partner_id": partner, "link_worker_id": worker, **_per_person(c)})
    for partner, c in sorted(by_partner.items()):
        rows.append({"partner_id": partner, "link_worker_id": TOTAL, **_per_person(c)})
    rows.sort(key=lambda r: (r["partner_id"], r["link_worker_id"] == TOTAL, r["link_worker_id"]))
    return Table(
        "link_worker_activity",
        TITLES["link_worker_activity"],
        [
            "partner_id",
            "link_worker_id",
            "people",
            "sessions",
            "minutes",
            "direct_minutes",
            "indirect_minutes",
            "pct_direct",
            "minutes_per_person",
            "sessions_per_person",
        ],
        rows,
        counts=("people", "sessions"),
        derived={**TIME_DERIVED, "minutes_per_person": "people", "sessions_per_person": "people"},
        group_by=("partner_id",),
    )


def _per_person(c: dict[str, int]) -> dict[str, Any]:
    people = c["people"]
    return {
        **_time_columns(c),
        "minutes_per_person": stats.r(c["minutes"] / people) if people else None,
        "sessions_per_person": stats.r(c["sessions"] / people) if people else None,
    }


def activity_types(v: View) -> Table:
    by_type = _sums(v, ACTV.c.activity_type)
    by_partner = _partner_totals(v, by_type)
    rows = []
    for (partner, kind), c in sorted(by_type.items()):
        whole = by_partner[partner]["minutes"]
        rows.append(
            {
                "partner_id": partner,
                "activity_type": kind,
                **_time_columns(c),
                "pct_of_minutes": stats.pct(c["minutes"], whole),
            }
        )
    for partner, c in sorted(by_partner.items()):
        rows.append(
            {
                "partner_id": partner,
                "activity_type": TOTAL,
                **_time_columns(c),
                "pct_of_minutes": stats.pct(c["minutes"], c["minutes"]),
            }
        )
    rows.sort(key=lambda r: (r["partner_id"], r["activity_type"] == TOTAL, r["activity_type"]))
    return Table(
        "activity_types",
        TITLES["activity_types"],
        [
            "partner_id",
            "activity_type",
            "people",
            "sessions",
            "minutes",
            "direct_minutes",
            "indirect_minutes",
            "pct_direct",
            "pct_of_minutes",
        ],
        rows,
        counts=("people", "sessions"),
        derived={**TIME_DERIVED, "pct_of_minutes": "people"},
        group_by=("partner_id",),
    )


def as_of(v: View) -> date:
    """The day the caseload is counted on (to its end): the period's last day, or today
    (Europe/London) when the period has no end."""
    return v.filters.end or datetime.now(TIME_ZONE).date()


def caseload(v: View) -> Table:
    day = as_of(v)
    end = local_midnight(day + timedelta(days=1))
    worker = sa.func.coalesce(EP.c.link_worker_id, UNASSIGNED)
    received = sa.and_(EP.c.received_at.is_not(None), EP.c.received_at < end)
    declined = sa.and_(EP.c.declined_at.is_not(None), EP.c.declined_at < end)
    ended = sa.and_(EP.c.dormant_at.is_not(None), EP.c.dormant_at < end)
    is_open = sa.and_(received, sa.not_(declined), sa.not_(ended))
    started = sa.and_(received, EP.c.received_at >= end - YEAR, sa.not_(declined))
    q = (
        sa.select(EP.c.partner_id, worker.label("worker"), count_if(is_open), count_if(started))
        .where(*v.episode_where(period=False), received)
        .group_by(EP.c.partner_id, worker)
    )
    capacity = v.ctx.profile.annual_caseload_capacity
    per: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for partner, name, n_open, n_started in sorted(tuple(r) for r in v.rows(q)):
        per[partner].append((name, int(n_open), int(n_started)))
    rows: list[dict[str, Any]] = []
    for partner, workers in sorted(per.items()):
        assigned = [w for w in workers if w[0] != UNASSIGNED]
        for name, n_open, n_started in workers:
            own = capacity if name != UNASSIGNED else None
            rows.append(_caseload_row(day, partner, name, n_open, n_started, own))
        total = capacity * len(assigned) if assigned else None
        rows.append(
            _caseload_row(
                day, partner, TOTAL, sum(w[1] for w in workers), sum(w[2] for w in workers), total
            )
        )
    return Table(
        "caseload",
        TITLES["caseload"],
        [
            "partner_id",
            "link_worker_id",
            "as_of",
            "open_cases",
            "started_last_12_months",
            "annual_capacity",
            "pct_of_capacity",
        ],
        rows,
        counts=("open_cases", "started_last_12_months"),
        derived={"pct_of_capacity": "started_last_12_months"},
        group_by=("partner_id",),
    )


def _caseload_row(
    day: date, partner: str, worker: str, n_open: int, n_started: int, capacity: int | None
) -> dict[str, Any]:
    return {
        "partner_id": partner,
        "link_worker_id": worker,
        "as_of": day.isoformat(),
        "open_cases": n_open,
        "started_last_12_months": n_started,
        "annual_capacity": capacity,
        "pct_of_capacity": stats.pct(n_started, capacity) if capacity else None,
    }
