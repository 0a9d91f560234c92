"""The contract manager's payment API over a real database (SQLite): every route's happy
path, the role check, problem+json errors, and the CSV export. No servers: the router
runs in a minimal app with the engine on ``app.state.payments``."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api import problems
from api.payments import ACTOR_HEADER, Actor, router
from payments.claims import claim_id
from tests.unit.test_payment_engine import (
    deliver,
    envelope,
    payments,
    publish_evidence,
)
from tests.unit.test_payment_rules import engagement, reviewed, wemwbs_pair

PROBLEM = "application/problem+json"


def as_actor(actor_id: str, role: str = "contract_manager") -> dict[str, str]:
    return {ACTOR_HEADER: f"{actor_id}; role={role}; partner=demo-county"}


ANN, BOB, CAT = as_actor("cm-ann"), as_actor("cm-bob"), as_actor("cm-cat")


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.include_router(router)
    app.state.payments = payments(engine, above=40_000)
    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://linkway")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture
def claims(app: FastAPI, engine: Engine) -> dict[str, str]:
    """An M3 claim with published evidence, and an M1 claim."""
    pe = app.state.payments
    m3 = reviewed(wemwbs_pair(4), referral="r-1")
    m1 = engagement(referral="r-2")
    publish_evidence(engine, m3, m1)
    made = deliver(pe, (envelope(m3), m3), (envelope(m1), m1))
    return {d.key.metric: claim_id(d.key) for d in made}


async def test_claims_are_listed_filtered_and_paged(
    client: httpx.AsyncClient, claims: dict[str, str]
) -> None:
    page = (await client.get("/payments/claims", params={"limit": 1}, headers=ANN)).json()
    assert [c["metric"] for c in page["items"]] == ["M3"] and page["next_cursor"]
    rest = (
        await client.get("/payments/claims", params={"cursor": page["next_cursor"]}, headers=ANN)
    ).json()
    assert [c["claim_id"] for c in rest["items"]] == [claims["M1"]]
    assert rest["next_cursor"] is None
    only = await client.get(
        "/payments/claims", params={"metric": "M1", "period": "2026-06"}, headers=ANN
    )
    assert [c["referral_id"] for c in only.json()["items"]] == ["r-2"]
    bad = await client.get("/payments/claims", params={"status": "settled"}, headers=ANN)
    assert (bad.status_code, bad.headers["content-type"]) == (422, PROBLEM)


async def test_a_claim_and_its_evidence_trail(
    client: httpx.AsyncClient, claims: dict[str, str]
) -> None:
    claim = (await client.get(f"/payments/claims/{claims['M3']}", headers=ANN)).json()
    assert (claim["status"], claim["amount_pence"], claim["approvals_needed"]) == (
        "claimed",
        50_000,
        2,
    )
    trail = (await client.get(f"/payments/claims/{claims['M3']}/evidence", headers=ANN)).json()
    assert trail["rate_card"]["version"] == "2026.1"
    assert all(e["found"] for e in trail["events"])
    assert [m["instrument"] for m in trail["measurements"] if m["counted"]] == ["WEMWBS"] * 2


async def test_the_lifecycle_through_the_api(
    client: httpx.AsyncClient, claims: dict[str, str]
) -> None:
    url = f"/payments/claims/{claims['M3']}"
    assert (await client.post(f"{url}/validate", headers=ANN)).json()["status"] == "validated"
    first = (await client.post(f"{url}/approve", headers=BOB)).json()
    assert (first["status"], first["approver_ids"]) == ("validated", ["cm-bob"])
    assert (await client.post(f"{url}/approve", headers=CAT)).json()["status"] == "approved"
    paid = await client.post(f"{url}/paid", json={"payment_ref": "BACS-42"}, headers=ANN)
    assert paid.json()["status"] == "paid"
    disputed = await client.post(f"{url}/dispute", json={"reason_code": "audit_query"}, headers=BOB)
    assert disputed.json()["status"] == "disputed"
    upheld = await client.post(f"{url}/resolve", json={"outcome": "upheld"}, headers=CAT)
    assert upheld.json()["statuses"][-2:] == ["disputed", "upheld"]


async def test_lifecycle_errors_are_problems(
    client: httpx.AsyncClient, claims: dict[str, str]
) -> None:
    url = f"/payments/claims/{claims['M1']}"
    early = await client.post(f"{url}/approve", headers=ANN)
    assert (early.status_code, early.headers["content-type"]) == (409, PROBLEM)
    assert "from claimed to approved" in early.json()["detail"]
    await client.post(f"{url}/validate", headers=ANN)
    own = await client.post(f"{url}/approve", headers=ANN)
    assert (own.status_code, own.json()["title"]) == (403, "Separation of duties")
    free_text = await client.post(f"{url}/dispute", json={"reason_code": "he said so"}, headers=BOB)
    assert free_text.status_code == 422


async def test_a_claim_that_fails_validation_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, engine: Engine
) -> None:
    o = engagement(referral="r-3", consent=False)
    (made,) = deliver(app.state.payments, (envelope(o), o))
    answer = await client.post(f"/payments/claims/{claim_id(made.key)}/validate", headers=ANN)
    assert (answer.status_code, answer.json()["title"]) == (409, "Claim fails validation")
    assert "consent was not recorded" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/claims/nope"),
        ("get", "/claims/nope/evidence"),
        ("post", "/claims/nope/validate"),
        ("post", "/claims/nope/approve"),
    ],
)
async def test_an_unknown_claim_is_a_404_problem(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    answer = await client.request(method, f"/payments{path}", headers=ANN)
    assert (answer.status_code, answer.headers["content-type"]) == (404, PROBLEM)
    assert answer.json()["title"] == "Claim not found"


ROUTES = [
    ("get", "/claims", None),
    ("get", "/claims/{M3}", None),
    ("get", "/claims/{M3}/evidence", None),
    ("post", "/claims/{M3}/validate", None),
    ("post", "/claims/{M3}/approve", None),
    ("post", "/claims/{M3}/dispute", {"reason_code": "x"}),
    ("post", "/claims/{M3}/resolve", {"outcome": "upheld"}),
    ("post", "/claims/{M3}/paid", {"payment_ref": "x"}),
    ("get", "/statements", None),
    ("get", "/statements.csv", None),
    ("get", "/ledger/verify", None),
    ("get", "/ledger/checkpoints", None),
    ("post", "/ledger/checkpoints", None),
    ("post", "/ledger/checkpoints/verify", {"seq": 0, "head_hash": "0" * 64, "signature": "0"}),
    ("get", "/reconciliation", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_is_for_contract_managers_only(
    client: httpx.AsyncClient, claims: dict[str, str], method: str, path: str, body: Any
) -> None:
    url = "/payments" + path.format(**claims)
    for role in ("tier_one", "referrer", "admin"):
        answer = await client.request(method, url, json=body, headers=as_actor("someone", role))
        assert (answer.status_code, answer.headers["content-type"]) == (403, PROBLEM)
    anonymous = await client.request(method, url, json=body)
    assert (anonymous.status_code, anonymous.headers["content-type"]) == (401, PROBLEM)


async def test_an_authenticated_actor_on_the_request_wins_over_the_header(
    app: FastAPI, claims: dict[str, str]
) -> None:
    @app.middleware("http")
    async def authenticated(request: Any, call_next: Any) -> Any:
        request.state.actor = Actor(actor_id="cm-jwt", role="contract_manager", partner_id="c")
        return await call_next(request)

    async with client_for(app) as client:
        url = f"/payments/claims/{claims['M1']}/validate"
        answer = await client.post(url, headers=as_actor("intruder", "tier_one"))
        assert answer.json()["validator_id"] == "cm-jwt"


async def test_statements_as_json_and_csv(
    client: httpx.AsyncClient, claims: dict[str, str]
) -> None:
    (north,) = (
        await client.get("/payments/statements", params={"period": "2026-06"}, headers=ANN)
    ).json()
    assert (north["partner_id"], north["total"]["claims"], north["total"]["net_gbp"]) == (
        "north-wellbeing",
        2,
        "750.00",
    )
    assert (north["cap_pence"], north["headroom_pence"]) == (15_000_000, 14_925_000)
    assert set(north["metrics"]) == {"M1", "M3"}
    answer = await client.get("/payments/statements.csv", headers=ANN)
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    total = next(r for r in rows if r["metric"] == "ALL")
    assert (total["claimed_pence"], total["claimed_gbp"]) == ("75000", "750.00")


async def test_ledger_verification_and_checkpoints(
    client: httpx.AsyncClient, claims: dict[str, str]
) -> None:
    verified = (await client.get("/payments/ledger/verify", headers=ANN)).json()
    assert (verified["ok"], verified["head_seq"]) == (True, 2)
    made = await client.post("/payments/ledger/checkpoints", headers=ANN)
    assert made.status_code == 201
    held = made.json()
    assert (held["seq"], held["actor_id"]) == (2, "cm-ann")
    listed = (await client.get("/payments/ledger/checkpoints", headers=ANN)).json()
    assert [c["signature"] for c in listed] == [held["signature"]]
    body = {k: held[k] for k in ("seq", "head_hash", "signature")}
    good = (await client.post("/payments/ledger/checkpoints/verify", json=body, headers=ANN)).json()
    assert good["ok"]
    forged = {**body, "signature": "0" * 64}
    bad = (
        await client.post("/payments/ledger/checkpoints/verify", json=forged, headers=ANN)
    ).json()
    assert not bad["ok"] and "signature is wrong" in bad["reason"]


async def test_reconciliation(client: httpx.AsyncClient, claims: dict[str, str]) -> None:
    report = (await client.get("/payments/reconciliation", headers=ANN)).json()
    assert (report["ok"], report["outcome_events"], report["expected_claims"]) == (True, 2, 2)
    assert report["discrepancies"] == []
