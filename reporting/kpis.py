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

Extension point: a KPI is one ``Kpi`` entry in ``KPIS``. The link-worker activity log and
the distal outcomes (other issues) add their tables to ``reporting.tables`` and register
their KPIs here; the API, the exports and the docs' list follow.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from pathway.config import PathwayConfig
from pathway.measures import Change, MeasureError, Registry, Scores
from payments.ratebook import RateCardBook
from reporting import stats
from reporting.project import TIME_ZONE
from reporting.suppression import TOTAL, suppress
from reporting.tables import (
    ReportAction,
    ReportClaim,
    ReportDeadLetter,
    ReportEpisode,
    ReportHandoff,
    ReportMeasure,
    ReportOutcome,
    ReportReferral,
    ReportSession,
)

DOC = "docs/reporting.md"
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
# A claim in these states is money the contract owes or has paid.
PAYABLE = frozenset({"claimed", "validated", "approved", "paid", "disputed"})
DAY = 86_400  # seconds
PERCENTILES = (50, 90)  # of days waited, by the nearest-rank method (reporting.stats)


def _t(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


EP = _t(ReportEpisode)
REF = _t(ReportReferral)
HO = _t(ReportHandoff)
SES = _t(ReportSession)
MEA = _t(ReportMeasure)
ACT = _t(ReportAction)
OUT = _t(ReportOutcome)
CLA = _t(ReportClaim)
DLQ = _t(ReportDeadLetter)


@dataclass(frozen=True)
class Filters:
    """What a KPI is narrowed to; None is "all". Dates are local calendar dates
    (Europe/London), ``start`` and ``end`` both inclusive."""

    contract: str | None = None
    partner: str | None = None
    locality: str | None = None
    source: str | None = None
    practice: str | None = None
    support_level: str | None = None
    start: date | None = None
    end: date | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "contract": self.contract,
            "partner": self.partner,
            "locality": self.locality,
            "source": self.source,
            "practice": self.practice,
            "support_level": self.support_level,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


@dataclass(frozen=True)
class Context:
    """What the KPIs are measured against: the pathway profile (trajectory, deadlines,
    known sources), the rate cards (contracts, caps) and the instruments."""

    profile: PathwayConfig
    book: RateCardBook
    registry: Registry


@dataclass
class Table:
    kpi: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    counts: tuple[str, ...] = ()  # columns counting people (suppressed when small)
    derived: dict[str, str] = field(default_factory=dict)  # column -> the count it is from
    group_by: tuple[str, ...] = ()

    def suppressed(self) -> Table:
        rows = suppress(self.rows, self.counts, self.derived, self.group_by)
        return Table(self.kpi, self.title, self.columns, rows, (), {}, self.group_by)

    def as_json(self, filters: Filters, suppressed: bool) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "title": self.title,
            "definition": f"{DOC}#{self.kpi}",
            "filters": filters.as_dict(),
            "suppressed": suppressed,
            "columns": self.columns,
            "rows": self.rows,
        }


def _local_midnight(day: date) -> datetime:
    """The UTC instant a local (Europe/London) calendar day starts."""
    return datetime.combine(day, time(), TIME_ZONE).astimezone(UTC)


def count_if(condition: ColumnElement[Any]) -> ColumnElement[int]:
    """How many rows of the group meet the condition (0 for none)."""
    return sa.func.count(sa.case((condition, 1)))


class View:
    """The filter as SQL over the read models, shared by every KPI of one request.

    ``episodes`` are the episodes received in the period and matching every dimension;
    facts dated later (an action, an outcome, a claim) belong to an episode matching the
    dimensions whatever its start date (``of_episode(..., period=False)``) and are dated
    within the period themselves."""

    def __init__(self, source: Session | Connection, filters: Filters, ctx: Context) -> None:
        self.conn = source.connection() if isinstance(source, Session) else source
        self.filters, self.ctx = filters, ctx
        self.dialect = self.conn.dialect.name
        f = filters
        self.partners: list[str] | None = None
        if f.contract is not None:
            known = f.contract in ctx.book.contracts()
            cards = ctx.book.versions(f.contract) if known else []  # unknown: pays no one
            self.partners = sorted({p for card in cards for p in card.partners})
        self._start = _local_midnight(f.start) if f.start else None
        self._end = _local_midnight(f.end + timedelta(days=1)) if f.end else None

    def rows(self, statement: Any) -> list[Any]:
        return list(self.conn.execute(statement).all())

    # --- the filter as WHERE clauses ----------------------------------------------------

    def person(self, t: sa.FromClause) -> list[ColumnElement[bool]]:
        """The dimension filters on a table with the referral's partner, locality, source
        and referring organisation."""
        f, out = self.filters, []
        if f.partner is not None:
            out.append(t.c.partner_id == f.partner)
        if self.partners is not None:
            out.append(t.c.partner_id.in_(self.partners) if self.partners else sa.false())
        if f.locality is not None:
            out.append(t.c.locality == f.locality)
        if f.source is not None:
            out.append(t.c.source == f.source)
        if f.practice is not None:
            out.append(t.c.referrer_org_id == f.practice)
        return out

    def in_period(self, at: sa.ColumnElement[Any]) -> list[ColumnElement[bool]]:
        """``at`` falls on a local calendar day from ``start`` to ``end``, inclusive."""
        out = []
        if self._start is not None:
            out.append(at >= self._start)
        if self._end is not None:
            out.append(at < self._end)
        return out

    def month_in_period(self, month: sa.ColumnElement[Any]) -> list[ColumnElement[bool]]:
        f, out = self.filters, []
        if f.start is not None:
            out.append(month >= f.start.strftime("%Y-%m"))
        if f.end is not None:
            out.append(month <= f.end.strftime("%Y-%m"))
        return out

    def episode_where(
        self, period: bool = True, e: sa.FromClause = EP
    ) -> list[ColumnElement[bool]]:
        where = self.person(e)
        if self.filters.support_level is not None:
            where.append(e.c.support_level == self.filters.support_level)
        if period:
            where += [e.c.received_at.is_not(None), *self.in_period(e.c.received_at)]
        return where

    def of_episode(self, t: sa.FromClause, period: bool = True) -> ColumnElement[bool]:
        """The row of ``t`` belongs to an episode in the view."""
        e = EP.alias()
        return sa.exists().where(
            e.c.referral_id == t.c.referral_id,
            e.c.episode == t.c.episode,
            *self.episode_where(period, e),
        )

    def referral_where(self) -> list[ColumnElement[bool]]:
        where = [*self.person(REF), *self.in_period(REF.c.received_at)]
        if self.filters.support_level is not None:
            where.append(self.of_episode(REF, period=False))
        return where

    def session_where(self, h: sa.FromClause) -> list[ColumnElement[bool]]:
        """Sessions of the view's handoffs (``h``, joined on the handoff id)."""
        return [self.of_episode(h)]

    def dated(self, t: sa.FromClause, at: sa.ColumnElement[Any]) -> list[ColumnElement[bool]]:
        """Facts of episodes matching the filter (any start date), dated within the period."""
        return [self.of_episode(t, period=False), *self.in_period(at)]

    def seconds(self, start: sa.ColumnElement[Any], end: sa.ColumnElement[Any]) -> Any:
        """Seconds from ``start`` to ``end``, to the millisecond, computed by the database."""
        if self.dialect == "sqlite":
            diff = (sa.func.julianday(end) - sa.func.julianday(start)) * (DAY * 1000.0)
            return sa.func.round(diff) / 1000.0
        epoch = sa.extract("epoch", end - start) * 1000.0
        return sa.func.round(sa.cast(epoch, sa.Float)) / 1000.0


TITLES = {
    "referrals_trajectory": "Referrals received each month against the trajectory",
    "referrals_by_source": "Referrals by source",
    "referrals_by_practice": "Referrals by referring organisation (practice)",
    "triage": "Episodes accepted and declined at triage, with the reasons",
    "funnel": "The stage funnel: episodes reaching each step, and conversion",
    "time_to_contact": "Time from referral to first contact and to assessment",
    "time_to_contact_distribution": (
        "How many days people waited for first contact and for assessment"
    ),
    "overdue_actions": "Actions that fell due (a deadline passed before the work was done)",
    "handoffs": "Handoffs by provider and service",
    "handoff_reasons": (
        "Handoffs rejected, waitlisted (by band) or failed, by reason; services with no capacity"
    ),
    "measures": "Wellbeing measures: completeness, mean change and people meaningfully improved",
    "measure_change_distribution": (
        "Distribution of change from baseline to review, per instrument with one score"
    ),
    "outcomes": "Outcomes achieved, by month and outcome",
    "payments": "Outcome payments by contract, month and metric, against the caps",
    "data_quality": "Data quality: what is missing, late or wrong, and whose it is",
    "dead_letters": "Partner events refused (dead-lettered), by partner and reason",
}


# --- referrals ------------------------------------------------------------------------------


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


# --- funnel and timeliness ---------------------------------------------------------------


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


# --- handoffs --------------------------------------------------------------------------------

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


# --- measures ---------------------------------------------------------------------------------


def _headline(
    registry: Registry, instrument: str, raw: dict[str, Any], derived: dict[str, Any]
) -> float | None:
    """The one number an instrument's change is measured on, if it has one (a summed
    scale: its total, or its converted metric score where change is on that)."""
    try:
        inst = registry.get(instrument)
    except MeasureError:
        return None
    if inst.scoring != "sum":
        return None
    value = raw.get("total") if inst.change_on == "total" else derived.get(inst.change_on)
    return float(value) if isinstance(value, int | float) else None


Pair = tuple[
    str, str, str, str, str, str, str
]  # instrument, then each side's version, raw, derived


class Compared:
    """Each distinct pair of baseline and review scores compared once per request (the
    instruments' own rule, ``pathway.measures``): many episodes share the same scores."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.seen: dict[Pair, tuple[float | None, bool] | None] = {}

    def __call__(self, pair: Pair) -> tuple[float | None, bool] | None:
        """(change in the headline score, improved), or None when not comparable."""
        if pair not in self.seen:
            self.seen[pair] = self._compare(pair)
        return self.seen[pair]

    def _compare(self, pair: Pair) -> tuple[float | None, bool] | None:
        instrument, b_version, b_raw, b_derived, r_version, r_raw, r_derived = pair
        base_raw, base_derived = json.loads(b_raw), json.loads(b_derived)
        review_raw, review_derived = json.loads(r_raw), json.loads(r_derived)
        try:
            change: Change = self.registry.compare(
                Scores(instrument, b_version, base_raw, base_derived),
                Scores(instrument, r_version, review_raw, review_derived),
            )
        except MeasureError:
            return None  # different versions, or not a known instrument: not comparable
        before = _headline(self.registry, instrument, base_raw, base_derived)
        after = _headline(self.registry, instrument, review_raw, review_derived)
        delta = None if before is None or after is None else after - before
        return delta, change.improved


def _pair_columns() -> tuple[sa.FromClause, sa.FromClause, list[Any]]:
    base, review = MEA.alias("base"), MEA.alias("review")
    columns = [
        base.c.instrument,
        base.c.version,
        base.c.raw,
        base.c.derived,
        review.c.version,
        review.c.raw,
        review.c.derived,
    ]
    return base, review, columns


def _pairs_from(base: sa.FromClause, review: sa.FromClause) -> Any:
    return base.join(
        review,
        sa.and_(
            review.c.referral_id == base.c.referral_id,
            review.c.episode == base.c.episode,
            review.c.instrument == base.c.instrument,
            review.c.timepoint == "review",
        ),
    )


def _changes(v: View) -> dict[str, list[tuple[float | None, bool]]]:
    """Per instrument, each episode's (change, improved) from baseline to review; the
    database groups episodes with the same scores, each group compared once."""
    base, review, columns = _pair_columns()
    q = (
        sa.select(*columns, sa.func.count())
        .select_from(_pairs_from(base, review))
        .where(base.c.timepoint == "baseline", v.of_episode(base))
        .group_by(*columns)
    )
    compared = Compared(v.ctx.registry)
    out: dict[str, list[tuple[float | None, bool]]] = defaultdict(list)
    for *pair, n in sorted(tuple(r) for r in v.rows(q)):
        found = compared(cast(Pair, tuple(pair)))
        if found is not None:
            out[pair[0]].extend([found] * n)
    return out


def improved_by_episode(v: View) -> dict[tuple[str, int], list[str]]:
    """Per episode in the view, the instruments meaningfully improved at review."""
    base, review, columns = _pair_columns()
    q = (
        sa.select(base.c.referral_id, base.c.episode, *columns)
        .select_from(_pairs_from(base, review))
        .where(base.c.timepoint == "baseline", v.of_episode(base))
    )
    compared = Compared(v.ctx.registry)
    out: dict[tuple[str, int], list[str]] = defaultdict(list)
    for referral_id, episode, *pair in sorted(tuple(r) for r in v.rows(q)):
        found = compared(cast(Pair, tuple(pair)))
        if found is not None and found[1]:
            out[referral_id, episode].append(pair[0])
    return out


def measures(v: View) -> Table:
    q = (
        sa.select(MEA.c.instrument, MEA.c.timepoint, sa.func.count())
        .where(v.of_episode(MEA))
        .group_by(MEA.c.instrument, MEA.c.timepoint)
    )
    have: dict[str, Counter[str]] = defaultdict(Counter)
    for instrument, timepoint, n in v.rows(q):
        have[instrument][timepoint] = n
    changes = _changes(v)
    rows = []
    for instrument in sorted(have):
        c, pairs = have[instrument], changes.get(instrument, [])
        deltas = [d for d, _ in pairs if d is not None]
        mean, low, high = stats.mean_ci(deltas)
        improved = sum(1 for _, i in pairs if i)
        p_low, p_high = stats.wilson(improved, len(pairs))
        rows.append(
            {
                "instrument": instrument,
                "baseline": c["baseline"],
                "review": c["review"],
                "followup": c["followup"],
                "pct_reviewed": stats.pct(c["review"], c["baseline"]),
                "pct_followed_up": stats.pct(c["followup"], c["baseline"]),
                "paired": len(pairs),
                "mean_change": stats.r(mean, 2),
                "mean_change_ci_low": stats.r(low, 2),
                "mean_change_ci_high": stats.r(high, 2),
                "improved": improved,
                "pct_improved": stats.pct(improved, len(pairs)),
                "pct_improved_ci_low": None if p_low is None else round(100 * p_low, 1),
                "pct_improved_ci_high": None if p_high is None else round(100 * p_high, 1),
            }
        )
    return Table(
        "measures",
        TITLES["measures"],
        [
            "instrument",
            "baseline",
            "review",
            "followup",
            "pct_reviewed",
            "pct_followed_up",
            "paired",
            "mean_change",
            "mean_change_ci_low",
            "mean_change_ci_high",
            "improved",
            "pct_improved",
            "pct_improved_ci_low",
            "pct_improved_ci_high",
        ],
        rows,
        counts=("baseline", "review", "followup", "paired", "improved"),
        derived={
            "pct_reviewed": "review",
            "pct_followed_up": "followup",
            "mean_change": "paired",
            "mean_change_ci_low": "paired",
            "mean_change_ci_high": "paired",
            "pct_improved": "improved",
            "pct_improved_ci_low": "improved",
            "pct_improved_ci_high": "improved",
        },
        group_by=("instrument",),
    )


def measure_change_distribution(v: View) -> Table:
    rows: list[dict[str, Any]] = []
    for instrument, pairs in sorted(_changes(v).items()):
        counts = Counter(d for d, _ in pairs if d is not None)
        rows.extend(
            {"instrument": instrument, "change": change, "episodes": n}
            for change, n in sorted(counts.items())
        )
    return Table(
        "measure_change_distribution",
        TITLES["measure_change_distribution"],
        ["instrument", "change", "episodes"],
        rows,
        counts=("episodes",),
        group_by=("instrument",),
    )


# --- outcomes and payments --------------------------------------------------------------------


def outcomes(v: View) -> Table:
    q = (
        sa.select(OUT.c.month, OUT.c.outcome, sa.func.count())
        .where(*v.dated(OUT, OUT.c.occurred_at))
        .group_by(OUT.c.month, OUT.c.outcome)
    )
    rows = [
        {"month": m, "outcome": o, "episodes": n} for m, o, n in sorted(tuple(r) for r in v.rows(q))
    ]
    return Table(
        "outcomes",
        TITLES["outcomes"],
        ["month", "outcome", "episodes"],
        rows,
        counts=("episodes",),
    )


def payments(v: View) -> Table:
    payable = CLA.c.status.in_(sorted(PAYABLE))
    where = [v.of_episode(CLA, period=False), *v.month_in_period(CLA.c.month)]
    if v.filters.contract is not None:
        where.append(CLA.c.contract_id == v.filters.contract)
    q = (
        sa.select(
            CLA.c.contract_id,
            CLA.c.month,
            CLA.c.metric,
            sa.func.count(),
            count_if(payable),
            count_if(CLA.c.status == "capped"),
            count_if(CLA.c.status == "reversed"),
            sa.func.sum(sa.case((payable, CLA.c.amount_pence), else_=0)),
            sa.func.sum(sa.case((CLA.c.status == "paid", CLA.c.amount_pence), else_=0)),
        )
        .where(*where)
        .group_by(CLA.c.contract_id, CLA.c.month, CLA.c.metric)
    )
    rows = []
    running: Counter[str] = Counter()
    for contract_id, month, metric, claims, n_payable, capped, reversed_, amount, paid in sorted(
        tuple(r) for r in v.rows(q)
    ):
        running[contract_id] += int(amount or 0)
        card = _card(v.ctx.book, contract_id, month)
        metric_cap = card.metrics[metric].max_pence if card and metric in card.metrics else None
        rows.append(
            {
                "contract_id": contract_id,
                "month": month,
                "metric": metric,
                "claims": claims,
                "payable": n_payable,
                "capped": capped,
                "reversed": reversed_,
                "amount_pence": int(amount or 0),
                "paid_pence": int(paid or 0),
                "contract_to_date_pence": running[contract_id],
                "metric_max_pence": metric_cap,
                "partner_month_cap_pence": card.caps.per_partner_per_month_pence if card else None,
                "contract_max_pence": card.caps.total_contract_pence if card else None,
            }
        )
    return Table(
        "payments",
        TITLES["payments"],
        [
            "contract_id",
            "month",
            "metric",
            "claims",
            "payable",
            "capped",
            "reversed",
            "amount_pence",
            "paid_pence",
            "contract_to_date_pence",
            "metric_max_pence",
            "partner_month_cap_pence",
            "contract_max_pence",
        ],
        rows,
        counts=("claims", "payable", "capped", "reversed"),
        group_by=("contract_id", "month"),
    )


def _card(book: RateCardBook, contract_id: str, month: str) -> Any:
    try:
        moment = datetime.fromisoformat(f"{month}-15T12:00:00+00:00")
        return book.in_force(contract_id, moment)
    except (LookupError, ValueError):
        return None


# --- data quality ----------------------------------------------------------------------------


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
    )
}


def compute(name: str, source: Session | Connection, filters: Filters, ctx: Context) -> Table:
    """One KPI, answered by the database the session (or connection) reads."""
    return KPIS[name].compute(View(source, filters, ctx))


def answer(session: Session, name: str, filters: Filters, ctx: Context) -> Table:
    """One KPI from the database: only the rows and columns it needs are read."""
    return compute(name, session, filters, ctx)
