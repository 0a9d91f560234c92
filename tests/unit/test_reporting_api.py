"""The reporting routes over the hand-built cohort (tests/unit/test_reporting.py): JSON and
CSV for every KPI, scoped (a Tier One partner sees its own partner only), suppressed, and
the evaluation dataset for the commissioner only. The app runs in process with the real
authenticator and the read models in a SQLite file; the routes need nothing else."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlmodel import SQLModel, create_engine

from api.app import create_app
from api.auth import mint_token
from infra.settings import Settings
from pathway.config import load as load_profile
from payments.ratebook import RateCardBook
from reporting import kpis, rebuild
from reporting.tables import TABLE_NAMES
from tests.unit.test_reporting import cohort

TOKENS = {
    "manager": ("commissioner", "contract_manager"),
    "north": ("north-wellbeing", "tier_one"),
    "referrer": ("gp-oswestry", "referrer"),
}


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    tmp: Path = tmp_path_factory.mktemp("reports")
    settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'r.db'}")
    engine = create_engine(settings.sqlalchemy_url)
    SQLModel.metadata.create_all(
        engine, tables=[SQLModel.metadata.tables[t] for t in (*TABLE_NAMES, "processed_events")]
    )
    rebuild.apply_records(engine, cohort())
    app = create_app(settings)
    # The routes read only these of the app's shared dependencies.
    app.state.deps = SimpleNamespace(
        engine=engine,
        config=load_profile("default"),
        payments=SimpleNamespace(book=RateCardBook.packaged()),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://linkway") as http:
        http.headers["x-test"] = "1"
        client_tokens = {
            who: mint_token(settings, partner, role, subject=f"t-{who}")  # type: ignore[arg-type]
            for who, (partner, role) in TOKENS.items()
        }
        http.tokens = client_tokens  # type: ignore[attr-defined]
        yield http
    engine.dispose()


def auth(http: httpx.AsyncClient, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {http.tokens[who]}"}  # type: ignore[attr-defined]


async def test_the_index_links_every_kpi_to_its_definition_and_csv(client) -> None:
    got = (await client.get("/reports", headers=auth(client, "manager"))).json()
    assert [k["kpi"] for k in got] == list(kpis.KPIS)
    funnel = next(k for k in got if k["kpi"] == "funnel")
    assert funnel["csv_url"] == "/reports/funnel.csv"
    assert funnel["definition"] == "docs/reporting.md#funnel"


async def test_a_kpi_as_json_is_suppressed_and_says_what_it_is(client) -> None:
    answer = await client.get("/reports/funnel", headers=auth(client, "manager"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["suppressed"] is True and body["filters"]["partner"] is None
    stages = {r["stage"]: r["episodes"] for r in body["rows"]}
    assert stages["received"] == 6 and stages["contacted"] == "<5"


async def test_a_kpi_as_csv(client) -> None:
    answer = await client.get("/reports/referrals_trajectory.csv", headers=auth(client, "manager"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.text.splitlines()
    assert lines[0] == "month,expected,received,difference,pct_of_expected"
    assert lines[1] == "2026-04,600,0,-600,0.0"
    # June's single referral is under 5; May's 6 is withheld too, or the total would
    # give June back (secondary suppression)
    assert "2026-05,650,[c],," in lines and "2026-06,700,<5,," in lines


async def test_a_tier_one_partner_sees_only_its_own(client) -> None:
    mine = await client.get("/reports/funnel", headers=auth(client, "north"))
    body = mine.json()
    assert body["filters"]["partner"] == "north-wellbeing"
    assert body["rows"][0]["episodes"] == 5  # not the south's episode
    other = await client.get(
        "/reports/funnel", params={"partner": "south-wellbeing"}, headers=auth(client, "north")
    )
    assert other.status_code == 403
    assert other.headers["content-type"].startswith("application/problem+json")
    denied = await client.get("/evaluation/episodes.csv", headers=auth(client, "north"))
    assert denied.status_code == 403


async def test_other_roles_and_bad_requests_are_refused(client) -> None:
    assert (await client.get("/reports/funnel")).status_code == 401
    assert (await client.get("/reports", headers=auth(client, "referrer"))).status_code == 403
    manager = auth(client, "manager")
    assert (await client.get("/reports/nonsense", headers=manager)).status_code == 422
    backwards = {"from": "2026-06-01", "to": "2026-05-01"}
    assert (
        await client.get("/reports/funnel", params=backwards, headers=manager)
    ).status_code == 422
    for day in ("0", "2026-02-30", "2026-W01-1"):  # a timestamp, no such day, a week date
        refused = await client.get("/reports/funnel", params={"to": day}, headers=manager)
        assert refused.status_code == 422, day
    unknown = await client.get("/reports/funnel", params={"partnr": "x"}, headers=manager)
    assert unknown.status_code == 422


async def test_filters_reach_the_kpi(client) -> None:
    params = {"from": "2026-06-01", "source": "hospital"}
    body = (
        await client.get("/reports/funnel", params=params, headers=auth(client, "manager"))
    ).json()
    assert body["filters"]["from"] == "2026-06-01" and body["rows"][0]["episodes"] == "<5"


async def test_the_evaluation_dataset_as_csv_and_parquet(client) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    manager = auth(client, "manager")
    csv = await client.get("/evaluation/episodes.csv", headers=manager)
    assert csv.status_code == 200 and len(csv.text.splitlines()) == 7
    assert "ref-" not in csv.text
    parquet = await client.get("/evaluation/episodes.parquet", headers=manager)
    assert parquet.status_code == 200
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 6
