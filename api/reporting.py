"""Commissioner and partner reporting, under ``/reports`` and ``/evaluation``.

Every KPI (docs/reporting.md defines each) as JSON, for a dashboard to draw, and as CSV,
for a spreadsheet; and the pseudonymised episode-level evaluation dataset as CSV or
Parquet. All are read from the reporting read models (``reporting``), which the reporting
consumer keeps from the topics: never from Temporal, never by scanning the outbox.

Who sees what: a contract manager sees every partner; a Tier One partner sees its own
partner's numbers only (the ``partner`` filter is its own, whatever it asks; asking for
another partner is a 403). The evaluation dataset is the commissioner's (contract
manager). Every count of people from 1 to 4 is shown as ``"<5"``, with the secondary
suppression docs/reporting.md describes, for every caller.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.auth import Caller, require
from api.deps import deps
from api.problems import Problem, responses
from events.ids import Code, Id
from infra.db import snapshot
from infra.settings import get_settings
from pathway.measures import default_registry
from reporting import export, kpis
from reporting.kpis.choices import choices

router = APIRouter(tags=["reports"], responses=responses(401, 403, 404, 422, 429))

Reader = Annotated[Caller, Depends(require("contract_manager", "tier_one"))]
Commissioner = Annotated[Caller, Depends(require("contract_manager"))]
KPI_PATTERN = "^(" + "|".join(kpis.KPIS) + ")$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
KpiName = Annotated[
    str, Path(pattern=KPI_PATTERN, description="A KPI's name: GET /reports lists them.")
]


class KpiLink(BaseModel):
    kpi: str
    title: str
    definition: str = Field(description="Where docs/reporting.md defines it")
    json_url: str
    csv_url: str


class KpiReport(BaseModel):
    """One KPI table. ``rows`` are objects keyed by ``columns``; a count of people from
    1 to 4 is the string ``"<5"`` and a value derived from it is null."""

    kpi: str
    title: str
    definition: str
    filters: dict[str, str | None]
    suppressed: bool
    columns: list[str]
    rows: list[dict[str, Any]]


def report_filters(
    contract: Annotated[Id | None, Query(description="A contract id (its partners)")] = None,
    partner: Annotated[Id | None, Query(description="A Tier One partner id")] = None,
    locality: Annotated[Id | None, Query()] = None,
    source: Annotated[Code | None, Query(description="Kind of referrer: gp, self, ...")] = None,
    practice: Annotated[Id | None, Query(description="The referring organisation's id")] = None,
    support_level: Annotated[Id | None, Query()] = None,
    start: Annotated[
        str | None,
        Query(alias="from", pattern=DATE, description="First day, inclusive (Europe/London)"),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", pattern=DATE, description="Last day, inclusive (Europe/London)"),
    ] = None,
) -> kpis.Filters:
    first, last = _day("from", start), _day("to", end)
    if first is not None and last is not None and last < first:
        raise Problem(422, "Invalid request", "the period's 'to' is before its 'from'")
    return kpis.Filters(contract, partner, locality, source, practice, support_level, first, last)


def _day(name: str, value: str | None) -> date | None:
    """A calendar date, YYYY-MM-DD only (not a timestamp, not a week date)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(422, "Invalid request", f"'{name}' is not a calendar date") from None


FiltersDep = Annotated[kpis.Filters, Depends(report_filters)]


def _scoped(caller: Caller, filters: kpis.Filters) -> kpis.Filters:
    if caller.role != "tier_one":
        return filters
    if filters.partner not in (None, caller.partner_id):
        raise Problem(403, "Forbidden", "a Tier One partner sees its own partner's reports only")
    return kpis.Filters(**{**filters.__dict__, "partner": caller.partner_id})


def _table(request: Request, name: str, filters: kpis.Filters) -> kpis.Table:
    d = deps(request)
    ctx = kpis.Context(d.config, d.payments.book, default_registry())
    with snapshot(d.engine) as session:  # a KPI's queries agree with each other
        return kpis.answer(session, name, filters, ctx).suppressed()


@router.get("/reports", response_model=list[KpiLink])
def list_reports(caller: Reader) -> list[KpiLink]:
    """Every KPI, with where it is defined and its JSON and CSV addresses."""
    return [
        KpiLink(
            kpi=name,
            title=_titles()[name],
            definition=f"{kpis.DOC}#{name}",
            json_url=f"/reports/{name}",
            csv_url=f"/reports/{name}.csv",
        )
        for name in kpis.KPIS
    ]


class FilterChoices(BaseModel):
    """The values each filter of ``GET /reports/{kpi}`` can take, as the read models hold
    them (a Tier One partner: its own referrals' only), each sorted, at most 500. A filter
    accepts any well-formed value; these are what a form offers."""

    contract: list[str]
    partner: list[str]
    locality: list[str]
    source: list[str]
    practice: list[str] = Field(description="Referring organisations' ids")
    support_level: list[str]


@router.get("/reports/filters", response_model=FilterChoices)
def get_filter_choices(request: Request, caller: Reader) -> FilterChoices:
    """What the reports' filters can be set to, for the caller: the dashboard's form
    offers them."""
    d = deps(request)
    own = caller.partner_id if caller.role == "tier_one" else None
    with Session(d.engine) as session:
        return FilterChoices(**choices(session, d.payments.book, own))


@cache
def _titles() -> dict[str, str]:
    return {name: kpi.title for name, kpi in kpis.KPIS.items()}


@router.get(
    "/reports/{kpi}.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The KPI table as CSV"}},
)
def get_report_csv(request: Request, kpi: KpiName, caller: Reader, filters: FiltersDep) -> Response:
    """A KPI table as CSV: one header line, then one line per row; ``<5`` where a count of
    people is suppressed, empty where a value is null."""
    filters = _scoped(caller, filters)
    table = _table(request, kpi, filters)
    return Response(
        export.table_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="linkway-{kpi}.csv"'},
    )


@router.get("/reports/{kpi}", response_model=KpiReport)
def get_report(request: Request, kpi: KpiName, caller: Reader, filters: FiltersDep) -> Response:
    """A KPI table as JSON, with its definition's address and the filters applied."""
    filters = _scoped(caller, filters)
    table = _table(request, kpi, filters)
    return Response(
        export.table_json(table, filters, suppressed=True), media_type="application/json"
    )


def _evaluation(request: Request, filters: kpis.Filters) -> list[dict[str, Any]]:
    d = deps(request)
    ctx = kpis.Context(d.config, d.payments.book, default_registry())
    settings = getattr(request.app.state, "settings", None) or get_settings()
    key = export.evaluation_key(settings.evaluation_key, settings.data_dir)
    with snapshot(d.engine) as session:
        return export.evaluation_rows(kpis.View(session, filters, ctx), key)


@router.get(
    "/evaluation/episodes.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per episode"}},
)
def get_evaluation_csv(request: Request, caller: Commissioner, filters: FiltersDep) -> Response:
    """The pseudonymised episode-level evaluation dataset (data dictionary:
    docs/reporting.md#evaluation-dataset)."""
    return Response(
        export.evaluation_csv(_evaluation(request, filters)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="linkway-episodes.csv"'},
    )


@router.get(
    "/evaluation/episodes.parquet",
    response_class=Response,
    responses={
        200: {
            "content": {"application/vnd.apache.parquet": {}},
            "description": "One row per episode, as Parquet",
        }
    },
)
def get_evaluation_parquet(request: Request, caller: Commissioner, filters: FiltersDep) -> Response:
    """The same dataset as Parquet, typed as the data dictionary says."""
    return Response(
        export.evaluation_parquet(_evaluation(request, filters)),
        media_type="application/vnd.apache.parquet",
        headers={"Content-Disposition": 'attachment; filename="linkway-episodes.parquet"'},
    )
