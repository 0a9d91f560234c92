"""What one dashboard panel sends the page: chart-ready series, where its numbers are
defined and where its CSV is. The page draws whatever it is sent; the data comes from
``api.dashboard.sources``."""

from __future__ import annotations

import csv
import io
from typing import Literal

from pydantic import BaseModel, Field

PanelName = Literal[
    "funnel",
    "trajectory",
    "time_to_contact",
    "wemwbs_change",
    "payments",
    "activity",
    "caseload",
    "distal",
]
Unit = Literal["episodes", "people", "pounds", "minutes", "per_person"]
# Small-number suppression: a count from 1 to 4 in a breakdown could identify a person.
SUPPRESS_BELOW = 5


class Series(BaseModel):
    name: str
    # bar: an amount; line: a course over the labels (a trajectory); limit: a ceiling at
    # each label (a cap), drawn as a dash so that one month still shows it.
    kind: Literal["bar", "line", "limit"] = "bar"
    values: list[float | None] = Field(description="one per label; null where suppressed")


class Panel(BaseModel):
    """One KPI panel. ``available`` false (with a ``reason``) when its source is not on
    this server: the page says so in place of the chart, and the other panels still draw."""

    panel: PanelName
    title: str
    unit: Unit
    available: bool = True
    reason: str | None = None
    labels: list[str] = []
    series: list[Series] = []
    suppressed: int = Field(0, description="how many values are hidden as counts under 5")
    notes: list[str] = []
    definition: str = Field(description="URL of the KPI's definition (docs/reporting.md)")
    csv: str | None = Field(None, description="URL of the KPI as CSV (bearer token needed)")
    source: str = Field(description="where the numbers come from")


def suppress(counts: list[int]) -> tuple[list[float | None], int]:
    """Counts with 1-4 hidden (None), and how many were hidden; 0 stays 0."""
    shown: list[float | None] = [None if 0 < c < SUPPRESS_BELOW else float(c) for c in counts]
    return shown, sum(1 for c in counts if 0 < c < SUPPRESS_BELOW)


def as_csv(panel: Panel) -> str:
    """One row per label, one column per series: the chart's numbers, as drawn (a
    suppressed count is written ``<5``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["label", *[s.name for s in panel.series]])
    for i, label in enumerate(panel.labels):
        cells = [s.values[i] for s in panel.series]
        writer.writerow([label, *["<5" if v is None else _number(v) for v in cells]])
    return out.getvalue()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
