"""The dashboard's panels from the reporting read models of a hand-built cohort, its
page's promise to load nothing from elsewhere, and the definitions every number links
to. (The page in a real browser: tests/integration/test_dashboard_browser.py.)"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from api.app import create_app
from api.auth import Caller
from api.dashboard import definitions
from api.dashboard.panels import Panel, Series, as_csv, suppress
from api.dashboard.sources import SOURCES, definition_url, load
from api.deps import Deps
from pathway.config import load as load_profile
from payments.ratebook import RateCardBook
from reporting import kpis, rebuild
from tests.unit.test_reporting import cohort

pytestmark = pytest.mark.both_databases  # the panels' queries, on SQLite and PostgreSQL
ROOT = Path(__file__).resolve().parents[2]
MANAGER = Caller("cm-1", "contract_manager", "commissioner")
NORTH = Caller("lw-1", "tier_one", "north-wellbeing", ("oswestry", "shrewsbury"))
SOUTH = Caller("lw-2", "tier_one", "south-wellbeing", ("ludlow",))
AT = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def deps(engine) -> Deps:
    """The reporting read models folded from the hand-built cohort of the KPI tests
    (north: five episodes, south: one)."""
    rebuild.apply_records(engine, cohort())
    payments = SimpleNamespace(book=RateCardBook.packaged())
    return cast(
        Deps, SimpleNamespace(engine=engine, config=load_profile("default"), payments=payments)
    )


def steps(panel: Panel) -> dict[str, float | None]:
    return dict(zip(panel.labels, panel.series[0].values, strict=True))


def test_a_panel_is_its_reporting_kpi_scoped_to_the_caller(deps):
    everyone = load("funnel", deps, MANAGER)
    assert everyone.csv == "/reports/funnel.csv" and everyone.source == "GET /reports/funnel"
    assert steps(everyone)["received"] == 6
    assert steps(everyone)["contacted"] is None  # 4 people: suppressed
    assert steps(load("funnel", deps, NORTH))["received"] == 5
    assert steps(load("funnel", deps, SOUTH))["received"] is None  # one person
    payments = load("payments", deps, MANAGER)
    assert {s.name: s.values for s in payments.series}["payable"] == [250.0, 0.0]


def test_a_panel_is_filtered_and_its_csv_link_carries_the_filters(deps):
    north = kpis.Filters(partner="north-wellbeing", start=date(2026, 5, 1))
    got = load("funnel", deps, MANAGER, north)
    assert steps(got)["received"] == 5
    assert got.csv == "/reports/funnel.csv?partner=north-wellbeing&from=2026-05-01"
    # A Tier One partner sees its own, whatever it picks; its CSV link says so.
    south = load("funnel", deps, SOUTH, north)
    assert steps(south)["received"] is None  # south's one person, not north's five
    assert south.csv == "/reports/funnel.csv?partner=south-wellbeing&from=2026-05-01"


def test_suppression_and_csv_of_a_chart():
    assert suppress([0, 1, 4, 5, 12]) == ([0.0, None, None, 5.0, 12.0], 2)
    panel = Panel(
        panel="payments",
        title="t",
        unit="pounds",
        labels=["2026-11"],
        series=[Series(name="claimed", values=[2200.0]), Series(name="cap", values=[0.5])],
        definition="/d",
        source="s",
    )
    assert as_csv(panel) == "label,claimed,cap\r\n2026-11,2200,0.50\r\n"


def test_every_panel_links_to_a_heading_of_docs_reporting():
    headings = definitions.anchors((ROOT / "docs" / "reporting.md").read_text())
    assert {definition_url(name).split("#")[1] for name in SOURCES} <= headings


def test_the_served_definitions_are_docs_reporting_with_githubs_anchors():
    assert definitions.check(ROOT) == [], "run `make docs`: the packaged copy is stale"
    html = definitions.render()
    assert '<h3 id="funnel">funnel</h3>' in html
    assert definitions.slug("Time to first contact (days)") == "time-to-first-contact-days"
    assert definitions.slug("`measure_change_distribution`") == "measure_change_distribution"


async def test_the_page_loads_everything_from_its_own_server_under_a_strict_policy():
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://linkway") as http:
        page = await http.get("/dashboard")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy
        assert "default-src 'none'" in policy
        linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert linked and all(url.startswith("/") and not url.startswith("//") for url in linked)
        assert "<script>" not in page.text  # no inline script: the policy would refuse it
        for url in (u for u in linked if u.startswith("/dashboard/static/")):
            asset = await http.get(url)
            assert asset.status_code == 200, url
        # Were the script not to run, the sign-in form posts (a body, which nothing logs):
        # the token never lands in a URL; and the API refuses the post.
        assert re.search(r'<form id="sign-in"[^>]*method="post"', page.text)
        refused = await http.post("/dashboard", data={"token": "eyJ.secret.token"})
        assert refused.status_code == 405 and "secret" not in refused.text
        definitions_page = await http.get("/dashboard/definitions")
        assert 'id="payments"' in definitions_page.text


def test_every_dashboard_asset_ships_in_the_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = data["package-data"]["api.dashboard"]
    here = ROOT / "api" / "dashboard"
    assets = [p.relative_to(here).as_posix() for p in here.rglob("*") if p.is_file()]
    shipped = [a for a in assets if not a.endswith((".py", ".pyc")) and "__pycache__" not in a]
    assert "static/chart.umd.min.js" in shipped and "static/chart.js-LICENSE.md" in shipped
    assert all(any(fnmatch.fnmatch(a, g) for g in globs) for a in shipped), shipped
