"""The Well-being Action Fund over HTTP, in the real app (tokens, roles, problem bodies,
idempotency) on a real database: the walk from opening a fund to the statement, the
separation of duties, a Tier One partner's scope, and the refusals, each a problem+json
with the status docs/api.md gives. No servers: httpx's ASGI transport runs no lifespan,
so the fixture builds the app's shared dependencies as its lifespan does."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from activities.readmodel import ReferralRow
from api import tenancy
from api.app import create_app
from api.auth import Role, mint_token
from api.deps import Deps
from api.idempotency import IdempotencyRecord
from api.personal_data import PersonalDataStore, load_keys
from fund.tables import GrantRow
from infra.settings import Settings
from messaging.outbox import OutboxRow
from pathway import config as pathway_config
from tests.unit.test_payment_engine import payments

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
PROBLEM = "application/problem+json"
Headers = Callable[..., dict[str, str]]
# The read model's record of the plan: goal 1 current, goal 2 dropped.
PLAN = json.dumps(
    [
        {"number": 1, "category": "family_friends", "status": "in_progress"},
        {"number": 2, "category": "health", "status": "dropped"},
    ]
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=database_url, api_rate_per_second=10_000.0,
        api_rate_burst=10_000,
    )  # fmt: skip


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    app = create_app(settings)
    app.state.deps = Deps(
        client=cast(Client, None),  # no fund route talks to the pathway
        engine=engine,
        people=PersonalDataStore(engine, load_keys(settings)),
        tenancy=tenancy.load(settings.tenancy_file),
        config=pathway_config.load(settings.pathway_profile),
        payments=payments(engine),
    )
    with Session(engine) as session:
        for referral_id, locality, partner in (
            ("r-north", "oswestry", "north-wellbeing"),
            ("r-south", "ludlow", "south-wellbeing"),
        ):
            session.add(
                ReferralRow(
                    referral_id=referral_id,
                    partner_id=partner,
                    locality=locality,
                    version=3,
                    episode=1,
                    stage="active",
                    consent_to_share=True,
                    opened_at=datetime.now(UTC),
                    goals=PLAN,
                )
            )
        session.commit()
    return app


@pytest.fixture
def who(settings: Settings) -> Headers:
    def headers(actor: str, role: Role, partner: str, key: str | bool = True) -> dict[str, str]:
        made = {"Authorization": f"Bearer {mint_token(settings, partner, role, actor)}"}
        if key:
            made["Idempotency-Key"] = uuid.uuid4().hex if key is True else str(key)
        return made

    return headers


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://linkway") as client:
        yield client


async def test_a_grant_from_request_to_statement_with_its_refusals(
    http: httpx.AsyncClient, who: Headers
) -> None:
    cm = lambda key=True: who("cm-1", "contract_manager", "commissioner", key)  # noqa: E731
    lw = lambda key=True: who("lw-1", "tier_one", "north-wellbeing", key)  # noqa: E731
    colleague = who("lw-2", "tier_one", "north-wellbeing")
    south = who("lw-9", "tier_one", "south-wellbeing")
    fund_body = {"contract_id": "c-1", "period": "2026-27", "budget_pence": 10_000,
                 "purposes": ["travel", "equipment"], "max_grant_pence": 6_000}  # fmt: skip
    opened = await http.post("/funds", json=fund_body, headers=cm())
    assert opened.status_code == 201, opened.text
    fund = opened.json()["fund_id"]
    again = await http.post("/funds", json=fund_body, headers=cm())
    assert (again.status_code, again.headers["content-type"]) == (409, PROBLEM)
    assert (await http.post("/funds", json=fund_body, headers=lw())).status_code == 403

    grant = {"referral_id": "r-north", "goal_id": "1", "purpose": "travel",
             "supplier": "Arriva bus pass", "amount_pence": 5_000}  # fmt: skip
    key = uuid.uuid4().hex
    asked = await http.post(f"/funds/{fund}/grants", json=grant, headers=lw(key))
    assert asked.status_code == 201, asked.text
    replay = await http.post(f"/funds/{fund}/grants", json=grant, headers=lw(key))
    assert replay.json() == asked.json()  # the same grant, not a second one
    # It keeps what its goal was: a revised plan may give number 1 to another goal.
    assert asked.json()["goal_category"] == "family_friends"
    grant_id = asked.json()["grant_id"]
    url = f"/funds/{fund}/grants/{grant_id}"

    # Refusals: another partner's referral is as missing as no referral; a purpose the
    # fund does not fund and an amount over its limit are 422.
    hidden = await http.post(
        f"/funds/{fund}/grants", json={**grant, "referral_id": "r-south"}, headers=lw()
    )
    missing = await http.post(
        f"/funds/{fund}/grants", json={**grant, "referral_id": "r-none"}, headers=lw()
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]
    assert (
        await http.post(f"/funds/{fund}/grants", json={**grant, "purpose": "gym"}, headers=lw())
    ).status_code == 422
    assert (
        await http.post(
            f"/funds/{fund}/grants", json={**grant, "amount_pence": 6_001}, headers=lw()
        )
    ).status_code == 422

    # The goal must be one of the person's current goals: not in the plan, or dropped: 422.
    for goal_id, says in (("goal-1", "current plan: 1, 2"), ("3", "1, 2"), ("2", "dropped")):
        off = await http.post(
            f"/funds/{fund}/grants", json={**grant, "goal_id": goal_id}, headers=lw()
        )
        assert (off.status_code, off.headers["content-type"]) == (422, PROBLEM), off.text
        assert off.json()["title"] == "Invalid grant" and says in off.json()["detail"]

    # The requester may not approve; another partner cannot even see the grant.
    own = await http.post(f"{url}/approve", headers=lw())
    assert (own.status_code, own.json()["title"]) == (403, "Separation of duties")
    assert (await http.post(f"{url}/approve", headers=south)).status_code == 404
    assert (await http.get(url, headers=south)).status_code == 404
    listed = await http.get(
        f"/funds/{fund}/grants", headers=who("lw-9", "tier_one", "south-wellbeing", False)
    )
    assert listed.json()["items"] == []
    approved = await http.post(f"{url}/approve", headers=colleague)
    assert approved.json()["status"] == "approved", approved.text

    # A second grant the budget cannot hold: 409 Over budget.
    second = await http.post(
        f"/funds/{fund}/grants", json={**grant, "amount_pence": 5_001}, headers=lw()
    )
    over = await http.post(
        f"/funds/{fund}/grants/{second.json()['grant_id']}/approve", headers=cm()
    )
    assert (over.status_code, over.json()["title"]) == (409, "Over budget")
    cut = await http.post(
        f"/funds/{fund}/budget", json={"budget_pence": 4_999, "reason_code": "cut"}, headers=cm()
    )
    assert cut.status_code == 409

    assert (
        await http.post(f"{url}/spend", json={"spent_pence": 5_001}, headers=cm())
    ).status_code == 422
    spent = await http.post(f"{url}/spend", json={"spent_pence": 4_250}, headers=cm())
    assert spent.json()["status"] == "spent"
    late = await http.post(f"{url}/cancel", json={"reason_code": "x"}, headers=cm())
    assert (late.status_code, late.json()["title"]) == (409, "Not allowed in this status")

    statement = (await http.get(f"/funds/{fund}/statement", headers=cm(False))).json()
    assert statement["spent_pence"] == 4_250 and statement["committed_pence"] == 0
    assert statement["available_pence"] == 5_750 and statement["requested_pence"] == 5_001
    assert statement["by_purpose"]["travel"]["spent_pence"] == 4_250
    assert statement["by_partner"]["north-wellbeing"]["grants_approved"] == 1
    assert "Arriva" not in str(statement)  # the supplier stays with the grant
    exported = await http.get(f"/funds/{fund}/statement.csv", headers=lw(False))
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="linkway-fund-c-1-2026-27.csv"' in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    total = rows[0]
    assert (total["line"], total["budget_pence"], total["spent_pence"]) == (
        "total",
        "10000",
        "4250",
    )
    assert (total["available_pence"], total["requested_pence"]) == ("5750", "5001")
    for line in ("purpose", "partner"):  # each breakdown adds up to the total, to the penny
        for column in ("committed_pence", "spent_pence", "requested_pence", "grants_approved"):
            assert sum(int(r[column]) for r in rows if r["line"] == line) == int(total[column])
    assert {r["key"] for r in rows if r["line"] == "partner"} == {"north-wellbeing"}
    assert "Arriva" not in exported.text
    missing_csv = await http.get("/funds/no-such-fund/statement.csv", headers=cm(False))
    assert (missing_csv.status_code, missing_csv.headers["content-type"]) == (404, PROBLEM)


async def test_a_grant_request_retried_after_a_crash_between_its_two_writes_makes_one_grant(
    app: FastAPI, http: httpx.AsyncClient, who: Headers, engine: Engine
) -> None:
    """The grant and its event commit; the process dies before the Idempotency-Key
    records the answer. The client's retry (once the dead holder's lease has run out)
    finds the grant made under the key's reserved id: one grant, one event."""
    cm = who("cm-1", "contract_manager", "commissioner")
    body = {"contract_id": "c-2", "period": "2026-27", "budget_pence": 10_000}
    fund = (await http.post("/funds", json=body, headers=cm)).json()["fund_id"]
    store = app.state.deps.idempotency
    finish = store.finish

    def crash(*_: object) -> None:
        raise SystemExit("the process died here")

    store.finish = crash
    grant = {"referral_id": "r-north", "goal_id": "1", "purpose": "travel",
             "supplier": "Arriva", "amount_pence": 900}  # fmt: skip
    key = uuid.uuid4().hex
    with pytest.raises(SystemExit):
        await http.post(
            f"/funds/{fund}/grants",
            json=grant,
            headers=who("lw-1", "tier_one", "north-wellbeing", key),
        )
    store.finish = finish
    with Session(engine) as session:  # the dead holder's lease runs out
        session.execute(
            update(IdempotencyRecord).values(created_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
        # Meanwhile the plan changed: the goal was dropped. The retry still answers the
        # grant that was made, not a 422.
        dropped = json.dumps([{"number": 1, "category": "family_friends", "status": "dropped"}])
        session.execute(
            update(ReferralRow).where(ReferralRow.referral_id == "r-north").values(goals=dropped)
        )
        session.commit()
    retried = await http.post(
        f"/funds/{fund}/grants", json=grant, headers=who("lw-1", "tier_one", "north-wellbeing", key)
    )
    assert retried.status_code == 201, retried.text
    with Session(engine) as session:
        grants = session.exec(select(GrantRow).where(GrantRow.fund_id == fund)).all()
        events = session.exec(select(OutboxRow).where(OutboxRow.key == fund)).all()
    assert [g.grant_id for g in grants] == [retried.json()["grant_id"]]
    assert len(events) == 2  # opened, requested: nothing twice
