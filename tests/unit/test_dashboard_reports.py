"""The dashboard's panels drawn from reporting KPI tables, as ``GET /reports/{kpi}`` serves
them (columns and rows; a suppressed count is ``"<5"``), built here by hand."""

from __future__ import annotations

from typing import Any

from api.dashboard import reports
from api.dashboard.panels import Panel
from api.dashboard.sources import panel_of


def report(kpi: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kpi": kpi, "title": kpi, "definition": "docs/reporting.md#x", "rows": rows}


def drawn(panel: Panel) -> dict[str, list[float | None]]:
    return {s.name: s.values for s in panel.series}


def test_the_funnel_draws_each_stage_with_suppressed_counts_as_gaps():
    got = panel_of(
        "funnel",
        **reports.from_funnel(
            report(
                "funnel",
                [
                    {"order": 1, "stage": "received", "episodes": 12},
                    {"order": 2, "stage": "contacted", "episodes": 9},
                    {"order": 3, "stage": "handoff_accepted", "episodes": "<5"},
                ],
            )
        ),
    )
    assert got.labels == ["received", "contacted", "handoff accepted"]
    assert drawn(got) == {"episodes": [12.0, 9.0, None]}
    assert got.suppressed == 1


def test_the_trajectory_is_a_line_only_where_the_profile_sets_one():
    rows = [
        {"month": "2026-10", "expected": None, "received": 7},
        {"month": "2026-11", "expected": 10, "received": "<5"},
    ]
    got = reports.from_trajectory(report("referrals_trajectory", rows))
    assert [(s.name, s.kind, s.values) for s in got["series"]] == [
        ("received", "bar", [7.0, None]),
        ("trajectory", "line", [None, 10.0]),
    ]
    without = reports.from_trajectory(report("referrals_trajectory", rows[:1]))
    assert [s.name for s in without["series"]] == ["received"]


def test_days_waited_are_bands_in_order_with_one_series_per_wait():
    rows = [
        {"measure": m, "days": d, "from_day": f, "episodes": n}
        for m in ("first_contact", "assessment")
        for d, f, n in (("0-1", 0, 6), ("10-14", 10, "<5"), ("2-3", 2, 0))
    ]
    got = reports.from_days(report("time_to_contact_distribution", rows))
    assert got["labels"] == ["0-1", "2-3", "10-14"]
    assert [(s.name, s.values) for s in got["series"]] == [
        ("first contact", [6.0, 0.0, None]),
        ("assessment", [6.0, 0.0, None]),
    ]
    assert got["suppressed"] == 2


def test_the_wemwbs_change_is_drawn_from_its_instruments_rows_only():
    rows = [
        {"instrument": "WEMWBS", "change": 14, "episodes": 6},
        {"instrument": "WEMWBS", "change": -3, "episodes": "<5"},
        {"instrument": "ONS4", "change": 1, "episodes": 9},
    ]
    got = reports.from_wemwbs(report("measure_change_distribution", rows))
    assert got["labels"] == ["-3", "+14"]
    assert got["series"][0].values == [None, 6.0]


def test_payments_are_pounds_per_month_against_the_partner_cap():
    row = {"contract_id": "c-1", "month": "2026-11", "partner_month_cap_pence": 15_000_000}
    rows = [
        {**row, "metric": "M1", "amount_pence": 100_000, "paid_pence": 25_000},
        {**row, "metric": "M3", "amount_pence": 120_000, "paid_pence": 0},
    ]
    got = reports.from_payments(report("payments", rows))
    assert got["labels"] == ["2026-11"]
    assert [(s.name, s.values) for s in got["series"]] == [
        ("payable", [2_200.0]),
        ("paid", [250.0]),
        ("cap", [150_000.0]),
    ]


def test_link_worker_time_is_drawn_per_worker_without_the_partner_totals():
    row = {"partner_id": "north", "people": 6, "sessions": 9}
    got = panel_of(
        "activity",
        **reports.from_activity(
            report(
                "link_worker_activity",
                [
                    {
                        **row,
                        "link_worker_id": "lw-1",
                        "direct_minutes": 300,
                        "indirect_minutes": 40,
                    },
                    {**row, "link_worker_id": "lw-2", "direct_minutes": None, "people": "<5"}
                    | {"indirect_minutes": None},
                    {**row, "link_worker_id": "all", "direct_minutes": 390, "indirect_minutes": 60},
                ],
            )
        ),
    )
    assert got.labels == ["lw-1", "lw-2"] and got.unit == "minutes"
    assert drawn(got) == {"direct": [300.0, None], "indirect": [40.0, None]}
    assert got.suppressed == 1


def test_caseload_against_capacity_and_distal_before_and_after():
    caseload = panel_of(
        "caseload",
        **reports.from_caseload(
            report(
                "caseload",
                [
                    {
                        "partner_id": p,
                        "link_worker_id": "lw-1",
                        "as_of": "2026-05-31",
                        "open_cases": 7,
                        "started_last_12_months": 120,
                        "annual_capacity": 250,
                    }
                    for p in ("north", "south")
                ],
            )
        ),
    )
    assert caseload.labels == ["north lw-1", "south lw-1"]  # two partners: each named
    assert drawn(caseload)["annual capacity"] == [250.0, 250.0]
    assert caseload.notes == ["As of 2026-05-31."]
    distal = panel_of(
        "distal",
        **reports.from_distal(
            report(
                "distal_outcomes",
                [
                    {
                        "measure": "ae_attendances",
                        "window_months": 6,
                        "mean_before": 0.8,
                        "mean_after": 0.5,
                    }
                ],
            )
        ),
    )
    assert distal.labels == ["ae attendances (6 months)"]
    assert drawn(distal) == {"before": [0.8], "after": [0.5]}
