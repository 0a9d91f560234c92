"""The KPIs: each a function of the reporting read models and a filter, returning one
table. Every definition here is written out in docs/reporting.md (the anchor each table
names), so two people computing a KPI get the same number.

Each KPI is answered by the database (SQLAlchemy Core, the same statements on SQLite and
PostgreSQL): the filter is a ``WHERE`` (``View``), counts are ``GROUP BY`` with ``CASE``,
and only the columns a KPI uses are read. What needs Python is computed from the few
rows the database hands back: nearest-rank percentiles from the one computed column
(days waited), and the instruments' own meaningful-change rule (``pathway.measures``)
once per distinct pair of scores. A KPI table's rows are plain dicts of codes and
numbers, sorted in Python (never by a database's collation), so exports are byte-for-byte
the same for the same events on either database.

The package is split by theme: ``view`` (the filter as SQL, the context, the table),
``referrals``, ``funnel`` (funnel, waits, overdue actions), ``handoffs``, ``measures``,
``money`` (outcomes and payments), ``quality`` (data quality, dead letters) and
``casework`` (link worker activity and caseload) and ``distal`` (distal outcomes).

Extension point: a KPI is one ``Kpi`` entry in ``KPIS`` below, its title in
``view.TITLES``; the API, the exports, the dashboard and the benchmark follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from reporting.kpis.casework import activity_types, caseload, link_worker_activity
from reporting.kpis.distal import distal_outcomes
from reporting.kpis.funnel import (
    funnel,
    overdue_actions,
    time_to_contact,
    time_to_contact_distribution,
)
from reporting.kpis.handoffs import handoff_reasons, handoffs
from reporting.kpis.measures import improved_by_episode, measure_change_distribution, measures
from reporting.kpis.money import outcomes, payments
from reporting.kpis.quality import data_quality, dead_letters
from reporting.kpis.referrals import (
    referrals_by_practice,
    referrals_by_source,
    referrals_trajectory,
    triage,
)
from reporting.kpis.view import (
    ACT,
    ACTV,
    CLA,
    DAY,
    DIS,
    DLQ,
    DOC,
    EP,
    HO,
    MEA,
    OUT,
    REF,
    SES,
    TITLES,
    Context,
    Filters,
    Table,
    View,
    count_if,
)


@dataclass(frozen=True)
class Kpi:
    name: str
    compute: Callable[[View], Table]
    reads: tuple[sa.Table, ...]  # the read models it reads (the benchmark's floor counts them)

    @property
    def title(self) -> str:
        return TITLES[self.name]


KPIS: dict[str, Kpi] = {
    k.name: k
    for k in (
        Kpi("referrals_trajectory", referrals_trajectory, (REF,)),
        Kpi("referrals_by_source", referrals_by_source, (REF,)),
        Kpi("referrals_by_practice", referrals_by_practice, (REF,)),
        Kpi("triage", triage, (EP,)),
        Kpi("funnel", funnel, (EP, HO, SES)),
        Kpi("time_to_contact", time_to_contact, (EP,)),
        Kpi("time_to_contact_distribution", time_to_contact_distribution, (EP,)),
        Kpi("overdue_actions", overdue_actions, (EP, ACT)),
        Kpi("handoffs", handoffs, (EP, HO, SES)),
        Kpi("handoff_reasons", handoff_reasons, (EP, HO)),
        Kpi("measures", measures, (EP, MEA)),
        Kpi("measure_change_distribution", measure_change_distribution, (EP, MEA)),
        Kpi("outcomes", outcomes, (EP, OUT)),
        Kpi("payments", payments, (EP, CLA)),
        Kpi("data_quality", data_quality, (EP, REF, HO, SES)),
        Kpi("dead_letters", dead_letters, (DLQ,)),
        Kpi("link_worker_activity", link_worker_activity, (EP, ACTV)),
        Kpi("activity_types", activity_types, (EP, ACTV)),
        Kpi("caseload", caseload, (EP,)),
        Kpi("distal_outcomes", distal_outcomes, (EP, DIS)),
    )
}


def compute(name: str, source: Session | Connection, filters: Filters, ctx: Context) -> Table:
    """One KPI, answered by the database the session (or connection) reads."""
    return KPIS[name].compute(View(source, filters, ctx))


def answer(session: Session, name: str, filters: Filters, ctx: Context) -> Table:
    """One KPI from the database: only the rows and columns it needs are read."""
    return compute(name, session, filters, ctx)


__all__ = [
    "ACT",
    "ACTV",
    "CLA",
    "DAY",
    "DIS",
    "DLQ",
    "DOC",
    "EP",
    "HO",
    "KPIS",
    "MEA",
    "OUT",
    "REF",
    "SES",
    "TITLES",
    "Context",
    "Filters",
    "Kpi",
    "Table",
    "View",
    "answer",
    "compute",
    "count_if",
    "improved_by_episode",
]
