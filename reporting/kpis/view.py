"""The filter as SQL over the reporting read models (``View``), what a KPI is measured
against (``Context``) and what it answers (``Table``), shared by every KPI module."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from pathway.config import PathwayConfig
from pathway.measures import Registry
from payments.ratebook import RateCardBook
from reporting.rows import TIME_ZONE
from reporting.suppression import suppress
from reporting.tables import (
    ReportAction,
    ReportActivity,
    ReportClaim,
    ReportDeadLetter,
    ReportDistal,
    ReportEpisode,
    ReportHandoff,
    ReportMeasure,
    ReportOutcome,
    ReportReferral,
    ReportSession,
)

DOC = "docs/reporting.md"
DAY = 86_400  # seconds


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
ACTV = _t(ReportActivity)
DIS = _t(ReportDistal)


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


def local_midnight(day: date) -> datetime:
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
        self._start = local_midnight(f.start) if f.start else None
        self._end = local_midnight(f.end + timedelta(days=1)) if f.end else None

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

    def narrowed(self) -> bool:
        """Whether any filter but the period is set (then a fact must be matched to its
        episode to know whether it is in the view)."""
        f = self.filters
        return any(
            x is not None
            for x in (f.contract, f.partner, f.locality, f.source, f.practice, f.support_level)
        )

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
    "link_worker_activity": (
        "Link worker activity: people, sessions and time, direct and indirect, per link worker"
    ),
    "activity_types": "Link worker activity by type: sessions and time, direct and indirect",
    "caseload": "Caseloads: open cases and people started in 12 months against capacity",
    "distal_outcomes": (
        "Distal outcomes: use of other services before and after the referral, per measure"
    ),
}
