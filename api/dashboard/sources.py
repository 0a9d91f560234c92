"""Where every dashboard panel gets its numbers: its reporting KPI.

Each panel is one KPI of the reporting read models (``api.dashboard.reports``: the table
``GET /reports/{kpi}`` serves, answered by ``reporting.kpis.answer`` with only what that
KPI reads, scoped like every other read: a Tier One partner sees its own partner). Its
CSV is the KPI's export and its definition the heading of docs/reporting.md named as the
KPI (``### funnel``).
"""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import Caller
from api.dashboard import reports
from api.dashboard.panels import Panel, PanelName, Unit
from api.deps import Deps
from reporting import kpis

DEFINITIONS = "/dashboard/definitions"


@dataclass(frozen=True)
class Source:
    title: str
    unit: Unit


SOURCES: dict[PanelName, Source] = {
    "funnel": Source("Stage funnel", "episodes"),
    "trajectory": Source("Referrals received by month, against trajectory", "episodes"),
    "time_to_contact": Source("Days to first contact and to assessment", "episodes"),
    "wemwbs_change": Source("WEMWBS change from baseline to review", "people"),
    "payments": Source("Outcome payments against the monthly cap", "pounds"),
    "activity": Source("Link worker time, direct and indirect", "minutes"),
    "caseload": Source("People started in 12 months against capacity", "people"),
    "distal": Source("Distal outcomes: use per person before and after", "per_person"),
}


def definition_url(name: PanelName) -> str:
    """Its definition: the heading of docs/reporting.md named as its reporting KPI."""
    return f"{DEFINITIONS}#{reports.KPIS[name][0]}"


def panel_of(name: PanelName, **fields: object) -> Panel:
    """The panel with its title and unit, its KPI's definition, export and endpoint."""
    source, kpi = SOURCES[name], reports.KPIS[name][0]
    return Panel.model_validate(
        {
            "panel": name,
            "title": source.title,
            "unit": source.unit,
            "definition": definition_url(name),
            "csv": f"/reports/{kpi}.csv",
            "source": f"GET /reports/{kpi}",
            **fields,
        }
    )


def load(name: PanelName, deps: Deps, caller: Caller, filters: kpis.Filters | None = None) -> Panel:
    """The panel from its reporting KPI, as this caller may see it, filtered."""
    return reports.panel(name, deps, caller, panel_of, filters or kpis.Filters())
