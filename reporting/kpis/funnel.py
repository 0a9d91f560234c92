"""The stage funnel, time to first contact and assessment, overdue actions."""

from __future__ import annotations

import math

import sqlalchemy as sa

from reporting import stats
from reporting.kpis.view import (
    ACT,
    DAY,
    EP,
    HO,
    SES,
    TITLES,
    Table,
    View,
    count_if,
)

FUNNEL = (
    "received",
    "contacted",
    "assessed",
    "plan_agreed",
    "handoff_accepted",
    "attended",
    "reviewed",
    "followed_up",
)
DAY_BUCKETS = (0, 1, 2, 3, 5, 7, 10, 14, 21, 28, 42, 56)
PERCENTILES = (50, 90)  # of days waited, by the nearest-rank method (reporting.stats)


def _reached(v: View) -> dict[str, int]:
    """Episodes in the view reaching each step of the funnel."""
    h = HO.alias()
    accepted = sa.exists().where(
        h.c.referral_id == EP.c.referral_id,
        h.c.episode == EP.c.episode,
        sa.or_(h.c.accepted, h.c.started),
    )
    s, sh = SES.alias(), HO.alias()
    attended = sa.exists(
        sa.select(1)
        .select_from(s.join(sh, sh.c.handoff_id == s.c.handoff_id))
        .where(
            s.c.referral_id == EP.c.referral_id,
            s.c.episode == EP.c.episode,
            s.c.status == "attended",
            *v.session_where(sh),
        )
    )
    q = sa.select(
        sa.func.count(),
        count_if(EP.c.first_contact_at.is_not(None)),
        count_if(EP.c.assessed_at.is_not(None)),
        count_if(EP.c.plan_at.is_not(None)),
        count_if(EP.c.reviewed_at.is_not(None)),
        count_if(EP.c.followup_at.is_not(None)),
    ).where(*v.episode_where())
    ((received, contacted, assessed, planned, reviewed, followed),) = v.rows(q)
    # In the WHERE clause, not per row in the select list: a semi-join for the database.
    ((handoff_accepted,),) = v.rows(sa.select(sa.func.count()).where(*v.episode_where(), accepted))
    ((went,),) = v.rows(sa.select(sa.func.count()).where(*v.episode_where(), attended))
    found = (received, contacted, assessed, planned, handoff_accepted, went, reviewed, followed)
    return dict(zip(FUNNEL, (int(n or 0) for n in found), strict=True))


def funnel(v: View) -> Table:
    reached = _reached(v)
    rows, previous = [], None
    total = reached["received"]
    for order, stage in enumerate(FUNNEL, start=1):
        n = reached[stage]
        rows.append(
            {
                "order": order,
                "stage": stage,
                "episodes": n,
                "pct_of_previous": None if previous is None else stats.pct(n, previous),
                "pct_of_received": stats.pct(n, total),
            }
        )
        previous = n
    return Table(
        "funnel",
        TITLES["funnel"],
        ["order", "stage", "episodes", "pct_of_previous", "pct_of_received"],
        rows,
        counts=("episodes",),
        derived={"pct_of_previous": "episodes", "pct_of_received": "episodes"},
    )


WAITS = {"first_contact": EP.c.first_contact_at, "assessment": EP.c.assessed_at}


def _waits(v: View, measure: str) -> tuple[int, dict[int, float | None], int, int]:
    """How many episodes waited, their nearest-rank median and 90th percentile in days
    (the database orders the one computed column and hands back only those two rows),
    and of the episodes with a first-contact deadline, how many there were and how many
    met it."""
    end = WAITS[measure]
    where = [*v.episode_where(), end.is_not(None)]
    due = EP.c.first_contact_due
    judged_if = due.is_not(None) if measure == "first_contact" else sa.false()
    q = sa.select(
        sa.func.count(), count_if(judged_if), count_if(sa.and_(judged_if, end <= due))
    ).where(*where)
    ((n, judged, within),) = v.rows(q)
    ranks = {p: max(1, math.ceil(p / 100 * n)) for p in PERCENTILES}
    secs = v.seconds(EP.c.received_at, end)
    ordered = (
        sa.select(secs.label("secs"), sa.func.row_number().over(order_by=secs).label("rank"))
        .where(*where)
        .subquery()
    )
    wanted = sa.select(ordered.c.rank, ordered.c.secs).where(
        ordered.c.rank.in_(sorted(set(ranks.values())))
    )
    at = {int(rank): float(value) / DAY for rank, value in v.rows(wanted)} if n else {}
    return n, {p: at.get(rank) for p, rank in ranks.items()}, judged, within


def time_to_contact(v: View) -> Table:
    rows = []
    deadline = {"first_contact": v.ctx.profile.first_contact_due, "assessment": None}
    for measure in WAITS:
        n, percentile, judged, within = _waits(v, measure)
        rows.append(
            {
                "measure": measure,
                "episodes": n,
                "median_days": stats.r(percentile[50]),
                "p90_days": stats.r(percentile[90]),
                "deadline": deadline[measure],
                "within_deadline": within if deadline[measure] else None,
                "pct_within_deadline": stats.pct(within, judged) if deadline[measure] else None,
            }
        )
    return Table(
        "time_to_contact",
        TITLES["time_to_contact"],
        [
            "measure",
            "episodes",
            "median_days",
            "p90_days",
            "deadline",
            "within_deadline",
            "pct_within_deadline",
        ],
        rows,
        counts=("episodes", "within_deadline"),
        derived={
            "median_days": "episodes",
            "p90_days": "episodes",
            "pct_within_deadline": "within_deadline",
        },
        group_by=("measure",),
    )


def _bucket(days: float) -> str:
    lower = max(b for b in DAY_BUCKETS if b <= days) if days >= 0 else 0
    later = [b for b in DAY_BUCKETS if b > lower]
    return f"{lower}-{later[0]}" if later else f"{lower}+"


def time_to_contact_distribution(v: View) -> Table:
    rows = []
    for measure, end in WAITS.items():
        waits = (
            sa.select(v.seconds(EP.c.received_at, end).label("secs"))
            .where(*v.episode_where(), end.is_not(None))
            .subquery()
        )
        # The bucket's lower bound: the largest bound at or below the wait (a negative
        # wait, a clock error, counts in the first); the wait is computed once per row.
        secs = waits.c.secs
        lower = sa.case(
            *((secs >= b * DAY, b) for b in reversed(DAY_BUCKETS[1:])), else_=DAY_BUCKETS[0]
        )
        q = sa.select(lower.label("lower"), sa.func.count()).group_by(lower)
        counts = {int(b): n for b, n in v.rows(q)}
        for b in DAY_BUCKETS:
            rows.append(
                {
                    "measure": measure,
                    "days": _bucket(b),
                    "from_day": b,
                    "episodes": counts.get(b, 0),
                }
            )
    return Table(
        "time_to_contact_distribution",
        TITLES["time_to_contact_distribution"],
        ["measure", "days", "from_day", "episodes"],
        rows,
        counts=("episodes",),
        group_by=("measure",),
    )


def overdue_actions(v: View) -> Table:
    per_episode = (
        sa.select(ACT.c.action, sa.func.count().label("n"))
        .where(*v.dated(ACT, ACT.c.due_at))
        .group_by(ACT.c.action, ACT.c.referral_id, ACT.c.episode)
        .subquery()
    )
    q = sa.select(per_episode.c.action, sa.func.sum(per_episode.c.n), sa.func.count()).group_by(
        per_episode.c.action
    )
    rows = [
        {"action": action, "actions_due": int(due), "episodes": people}
        for action, due, people in sorted(tuple(r) for r in v.rows(q))
    ]
    return Table(
        "overdue_actions",
        TITLES["overdue_actions"],
        ["action", "actions_due", "episodes"],
        rows,
        counts=("actions_due", "episodes"),
    )
