"""The panels drawn from the reporting KPIs (``GET /reports/{kpi}``, issue 14 items 1-3).

A KPI report is a table: ``{"kpi", "title", "definition", "columns", "rows", ...}`` with
a suppressed count of people as the string ``"<5"``. Each ``from_*`` function turns one
into the chart-ready ``Panel`` the page draws (pure, tested on hand-built reports), and
``report`` computes one exactly as the reports endpoint does, scoped the same way (a Tier
One partner: its own partner), from only what that one KPI reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from api.auth import Caller
from api.dashboard.panels import Panel, PanelName, Series
from api.deps import Deps
from infra.db import snapshot
from pathway.measures import default_registry
from reporting import kpis
from reporting.suppression import TOTAL

Report = dict[str, Any]


def scoped(caller: Caller, filters: kpis.Filters) -> kpis.Filters:
    """The filters as this caller may have them: a Tier One partner's partner is its own,
    whatever it picked (the page shows its own numbers, never a refusal)."""
    if caller.role == "tier_one":
        return replace(filters, partner=caller.partner_id)
    return filters


def query(filters: kpis.Filters) -> str:
    """The filters as the query string ``GET /reports/{kpi}`` takes (empty: none)."""
    given = {k: v for k, v in filters.as_dict().items() if v is not None}
    return "?" + urlencode(given) if given else ""


def report(deps: Deps, caller: Caller, kpi: str, filters: kpis.Filters | None = None) -> Report:
    """The KPI as ``GET /reports/{kpi}`` serves it to this caller, filtered."""
    filters = scoped(caller, filters or kpis.Filters())
    ctx = kpis.Context(deps.config, deps.payments.book, default_registry())
    with snapshot(deps.engine) as session:  # a KPI's queries agree with each other
        table = kpis.answer(session, kpi, filters, ctx).suppressed()
    return dict(table.as_json(filters, True))


def _count(value: Any) -> float | None:
    """A count as drawn: a suppressed ``"<5"`` (or a null derived from one) is None."""
    return float(value) if isinstance(value, int | float) else None


def _hidden(values: list[float | None]) -> int:
    return sum(v is None for v in values)


def from_funnel(r: Report) -> dict[str, Any]:
    values = [_count(row["episodes"]) for row in r["rows"]]
    return {
        "labels": [str(row["stage"]).replace("_", " ") for row in r["rows"]],
        "series": [Series(name="episodes", values=values)],
        "suppressed": _hidden(values),
    }


def from_trajectory(r: Report) -> dict[str, Any]:
    rows = r["rows"]
    received = [_count(row["received"]) for row in rows]
    series = [Series(name="received", values=received)]
    if any(row.get("expected") is not None for row in rows):
        series.append(
            Series(name="trajectory", kind="line", values=[_count(x["expected"]) for x in rows])
        )
    return {
        "labels": [row["month"] for row in rows],
        "series": series,
        "suppressed": _hidden(received),
    }


def from_days(r: Report) -> dict[str, Any]:
    """Days waited, one series per measure (first contact, assessment)."""
    order: dict[str, float] = {}
    by: dict[str, dict[str, float | None]] = defaultdict(dict)
    for row in r["rows"]:
        order[row["days"]] = row["from_day"]
        by[row["measure"]][row["days"]] = _count(row["episodes"])
    labels = sorted(order, key=order.__getitem__)
    series = [
        Series(name=str(m).replace("_", " "), values=[by[m].get(day, 0.0) for day in labels])
        for m in by
    ]
    return {
        "labels": labels,
        "series": series,
        "suppressed": sum(_hidden(s.values) for s in series),
    }


def from_wemwbs(r: Report) -> dict[str, Any]:
    rows = sorted((x for x in r["rows"] if x["instrument"] == "WEMWBS"), key=lambda x: x["change"])
    values = [_count(row["episodes"]) for row in rows]
    return {
        "labels": [f"{row['change']:+g}" for row in rows],
        "series": [Series(name="people", values=values)],
        "suppressed": _hidden(values),
    }


def from_payments(r: Report) -> dict[str, Any]:
    """Payable and paid per month (and contract, when there are several), in pounds,
    against the monthly cap per partner."""
    several = len({row["contract_id"] for row in r["rows"]}) > 1
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    caps: dict[str, int | None] = {}
    for row in r["rows"]:
        label = f"{row['month']} {row['contract_id']}" if several else row["month"]
        sums[label][0] += row["amount_pence"] or 0
        sums[label][1] += row["paid_pence"] or 0
        caps[label] = row.get("partner_month_cap_pence")
    labels = sorted(sums)
    return {
        "labels": labels,
        "series": [
            Series(name="payable", values=[sums[m][0] / 100 for m in labels]),
            Series(name="paid", values=[sums[m][1] / 100 for m in labels]),
            Series(name="cap", kind="limit", values=[(caps[m] or 0) / 100 or None for m in labels]),
        ],
        "suppressed": 0,
    }


def _per_row(rows: list[dict[str, Any]], key: str) -> tuple[list[dict[str, Any]], bool]:
    """The rows of one link worker each (the partner's ``all`` rows left out), and
    whether they come from several partners (then each label names its partner)."""
    mine = [row for row in rows if row[key] != TOTAL]
    return mine, len({row["partner_id"] for row in mine}) > 1


def _label(row: dict[str, Any], key: str, several: bool) -> str:
    return f"{row['partner_id']} {row[key]}" if several else str(row[key])


def from_activity(r: Report) -> dict[str, Any]:
    """Minutes per link worker, direct and indirect (withheld with a count under 5)."""
    rows, several = _per_row(r["rows"], "link_worker_id")
    direct = [_count(row["direct_minutes"]) for row in rows]
    indirect = [_count(row["indirect_minutes"]) for row in rows]
    return {
        "labels": [_label(row, "link_worker_id", several) for row in rows],
        "series": [
            Series(name="direct", values=direct),
            Series(name="indirect", values=indirect),
        ],
        "suppressed": _hidden(direct),
    }


def from_caseload(r: Report) -> dict[str, Any]:
    """Per link worker: people started in 12 months and open cases, against capacity."""
    rows, several = _per_row(r["rows"], "link_worker_id")
    started = [_count(row["started_last_12_months"]) for row in rows]
    return {
        "labels": [_label(row, "link_worker_id", several) for row in rows],
        "series": [
            Series(name="started in 12 months", values=started),
            Series(name="open cases", values=[_count(row["open_cases"]) for row in rows]),
            Series(
                name="annual capacity",
                kind="limit",
                values=[_count(row["annual_capacity"]) for row in rows],
            ),
        ],
        "suppressed": _hidden(started),
        "notes": [f"As of {rows[0]['as_of']}."] if rows else [],
    }


def from_distal(r: Report) -> dict[str, Any]:
    """Per measure: the mean use per person before the referral and after it."""
    rows = r["rows"]
    before = [_count(row["mean_before"]) for row in rows]
    return {
        "labels": [
            str(row["measure"]).replace("_", " ") + f" ({row['window_months']} months)"
            for row in rows
        ],
        "series": [
            Series(name="before", values=before),
            Series(name="after", values=[_count(row["mean_after"]) for row in rows]),
        ],
        "suppressed": _hidden(before),
    }


# panel -> (the reporting KPI it draws, how)
KPIS: dict[PanelName, tuple[str, Callable[[Report], dict[str, Any]]]] = {
    "funnel": ("funnel", from_funnel),
    "trajectory": ("referrals_trajectory", from_trajectory),
    "time_to_contact": ("time_to_contact_distribution", from_days),
    "wemwbs_change": ("measure_change_distribution", from_wemwbs),
    "payments": ("payments", from_payments),
    "activity": ("link_worker_activity", from_activity),
    "caseload": ("caseload", from_caseload),
    "distal": ("distal_outcomes", from_distal),
}


def panel(
    name: PanelName,
    deps: Deps,
    caller: Caller,
    make: Callable[..., Panel],
    filters: kpis.Filters,
) -> Panel:
    """The panel from its reporting KPI; its CSV link carries the filters it was drawn
    with (as the caller may have them)."""
    kpi, adapt = KPIS[name]
    found = report(deps, caller, kpi, filters)
    csv = f"/reports/{kpi}.csv" + query(scoped(caller, filters))
    return make(name, csv=csv, source=f"GET /reports/{kpi}", **adapt(found))
