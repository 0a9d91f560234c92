"""The dashboard's panels from hand-built read-model rows, its page's promise to load
nothing from elsewhere, and the definitions every number links to. (The page in a real
browser: tests/integration/test_dashboard_browser.py.)"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from sqlmodel import Session

from activities.readmodel import EpisodeRow, HandoffRow, MeasurementRow, ReferralRow
from api.app import create_app
from api.auth import Caller
from api.dashboard import definitions
from api.dashboard.panels import Panel, PanelName, Series, as_csv, suppress
from api.dashboard.sources import FUNNEL_STEPS, SOURCES, definition_url
from api.deps import Deps

pytestmark = pytest.mark.both_databases  # the panels' queries, on SQLite and PostgreSQL
ROOT = Path(__file__).resolve().parents[2]
MANAGER = Caller("cm-1", "contract_manager", "commissioner")
NORTH = Caller("lw-1", "tier_one", "north-wellbeing", ("oswestry", "shrewsbury"))
SOUTH = Caller("lw-2", "tier_one", "south-wellbeing", ("ludlow",))
AT = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def referral(referral_id: str, locality: str, episode: int, stage: str) -> ReferralRow:
    return ReferralRow(
        referral_id=referral_id,
        partner_id="north-wellbeing" if locality != "ludlow" else "south-wellbeing",
        locality=locality,
        version=1,
        episode=episode,
        stage=stage,
        consent_to_share=True,
        opened_at=AT,
    )


def episode(referral_id: str, number: int, stage: str, attended: int = 0) -> EpisodeRow:
    return EpisodeRow(
        referral_id=referral_id,
        number=number,
        stage=stage,
        opened_at=AT.replace(month=10 + number),
        source="gp",
        attended_sessions=attended,
    )


def wemwbs(referral_id: str, number: int, phase: str, total: int) -> MeasurementRow:
    return MeasurementRow(
        measurement_id=f"{referral_id}-{number}-{phase}",
        referral_id=referral_id,
        episode=number,
        phase=phase,
        instrument="WEMWBS",
        version="1",
        raw=json.dumps({"total": total}),
        administered_at=AT,
    )


@pytest.fixture
def deps(engine) -> Deps:
    """North: one referral whose first episode ended after its assessment and whose second
    was reviewed (+14 WEMWBS) after attending with an accepted handoff; south: one referral
    still at triage."""
    with Session(engine) as session:
        session.add(referral("north-1", "oswestry", 2, "ongoing_support"))
        session.add(episode("north-1", 1, "dormant"))
        session.add(episode("north-1", 2, "ongoing_support", attended=2))
        session.add(wemwbs("north-1", 1, "baseline", 30))
        session.add(wemwbs("north-1", 2, "baseline", 28))
        session.add(wemwbs("north-1", 2, "review", 42))
        session.add(
            HandoffRow(
                handoff_id="h-1",
                referral_id="north-1",
                episode=2,
                provider_id="walking-group",
                service_id="walks",
                status="accepted",
                requested_at=AT,
            )
        )
        session.add(referral("south-1", "ludlow", 1, "triage"))
        session.add(episode("south-1", 1, "triage"))
        session.commit()
    return cast(Deps, SimpleNamespace(engine=engine, payments=FakePayments()))


class FakePayments:
    """Statements as the payment engine gives them, recording the partner asked for."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def statements(self, partner_id: str | None = None) -> list[Any]:
        self.asked.append(partner_id)
        totals = SimpleNamespace(claimed_pence=250_000, approved_pence=25_000, paid_pence=0)
        return [
            SimpleNamespace(period="2026-11", partner_id=p, cap_pence=1_000_000, total=totals)
            for p in ("north-wellbeing", "south-wellbeing")
            if partner_id in (None, p)
        ]


def load(name: PanelName, deps: Deps, caller: Caller) -> Panel:
    """The panel from the read models the API keeps (what ``sources.load`` falls back to
    in a build without the reporting read models)."""
    return SOURCES[name].loader(deps, caller)


def steps(panel: Panel) -> dict[str, float | None]:
    return dict(zip(panel.labels, panel.series[0].values, strict=True))


def test_the_funnel_counts_each_episode_at_every_step_it_reached_in_the_callers_scope(deps):
    north = steps(load("funnel", deps, NORTH))
    assert list(north) == list(FUNNEL_STEPS)
    # Episode 1: assessed, then dormant. Episode 2: everything but a follow-up.
    assert north == {
        "received": 2,
        "contacted": 2,
        "assessed": 2,
        "plan agreed": 1,
        "handoff accepted": 1,
        "attended": 1,
        "reviewed": 1,
        "followed up": 0,
    }
    assert steps(load("funnel", deps, SOUTH)) == dict.fromkeys(FUNNEL_STEPS, 0) | {"received": 1}
    assert steps(load("funnel", deps, MANAGER))["received"] == 3


def test_referrals_received_are_counted_by_the_month_each_episode_opened(deps):
    panel = load("trajectory", deps, MANAGER)
    assert steps(panel) == {"2026-11": 2, "2026-12": 1}
    assert load("trajectory", deps, SOUTH).labels == ["2026-11"]


def test_wemwbs_change_bands_hide_counts_from_one_to_four(deps):
    panel = load("wemwbs_change", deps, NORTH)
    assert steps(panel)["+9 or more"] is None  # one person: suppressed
    assert steps(panel)["-2 to +2"] == 0  # a zero is not suppressed
    assert panel.suppressed == 1
    assert "-2 to +2,0\r\n+3 to +8,0\r\n+9 or more,<5\r\n" in as_csv(panel)


def test_a_panel_whose_source_is_not_on_this_server_says_why_and_offers_no_csv(deps):
    panel = load("time_to_contact", deps, MANAGER)
    assert not panel.available and panel.reason and panel.csv is None
    assert panel.definition == "/dashboard/definitions#time_to_contact_distribution"


def test_payments_show_a_tier_one_partner_only_its_own_statements(deps):
    mine = load("payments", deps, NORTH)
    assert deps.payments.asked == ["north-wellbeing"]
    assert mine.labels == ["2026-11"]
    assert {s.name: s.values for s in mine.series}["claimed"] == [2_500.0]
    everyone = load("payments", deps, MANAGER)
    assert everyone.labels == ["2026-11 north-wellbeing", "2026-11 south-wellbeing"]
    assert everyone.csv == "/payments/statements.csv"
    assert mine.notes == ["The fullest month claimed 25.0% of its cap."]


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
