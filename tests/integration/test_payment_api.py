"""The contract manager's payment API over a real database (SQLite), in the real app
(bearer tokens, roles, problem bodies, limits, every router): every route's happy path,
the role check, problem+json errors, the CSV export, Idempotency-Key on every command,
strict bodies and bounded ids. No servers: httpx's ASGI transport runs no lifespan, so
the fixture builds the app's shared dependencies as its lifespan does, without the
Temporal client no payment route uses."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api import problems, tenancy
from api.app import create_app
from api.auth import Caller, Role, mint_token
from api.commands import caller_key
from api.deps import Deps
from api.idempotency import IdempotencyStore, fingerprint
from api.payments import router
from api.personal_data import PersonalDataStore, load_keys
from infra.settings import Settings
from pathway import config as pathway_config
from payments.claims import claim_id
from tests.unit.test_payment_engine import (
    deliver,
    envelope,
    ledger,
    payments,
    publish_evidence,
)
from tests.unit.test_payment_rules import engagement, reviewed, wemwbs_pair

# The tests marked both_databases run on PostgreSQL too: the ones that write claims,
# approvals, keys and ledger entries (the route-by-role matrices stay on SQLite: they
# test authorisation, which no database decides).
PROBLEM = "application/problem+json"
PARTNER_OF: dict[str, str] = {
    "contract_manager": "commissioner",
    "tier_one": "north-wellbeing",
    "tier_two": "walking-group",
    "referrer": "gp-oswestry",
    "admin": "linkway-admin",
}
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Many requests from a few identities in a moment: lift the per-caller rate limit.
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        api_rate_per_second=10_000.0,
        api_rate_burst=10_000,
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    app = create_app(settings)
    app.state.deps = Deps(
        client=cast(Client, None),  # no payment route talks to the pathway
        engine=engine,
        people=PersonalDataStore(engine, load_keys(settings)),
        tenancy=tenancy.load(settings.tenancy_file),
        config=pathway_config.load(settings.pathway_profile),
        payments=payments(engine, above=40_000),
    )
    return app


@pytest.fixture
def as_actor(settings: Settings) -> Headers:
    """Headers for a signed bearer token (subject ``actor_id``, a demo partner holding
    ``role``), with a fresh Idempotency-Key unless ``key`` says otherwise."""

    def headers(
        actor_id: str, role: Role = "contract_manager", key: str | bool = True
    ) -> dict[str, str]:
        token = mint_token(settings, PARTNER_OF[role], role, actor_id)
        made = {"Authorization": f"Bearer {token}"}
        if key:
            made["Idempotency-Key"] = uuid.uuid4().hex if key is True else str(key)
        return made

    return headers


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://linkway")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


def engine_of(app: FastAPI) -> Any:
    return app.state.deps.payments


@pytest.fixture
def claims(app: FastAPI, engine: Engine) -> dict[str, str]:
    """An M3 claim with published evidence, and an M1 claim."""
    m3 = reviewed(wemwbs_pair(4), referral="r-1")
    m1 = engagement(referral="r-2")
    publish_evidence(engine, m3, m1)
    made = deliver(engine_of(app), (envelope(m3), m3), (envelope(m1), m1))
    return {d.key.metric: claim_id(d.key) for d in made}


@pytest.mark.both_databases
async def test_claims_are_listed_filtered_and_paged(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    page = (
        await client.get("/payments/claims", params={"limit": 1}, headers=as_actor("cm-ann"))
    ).json()
    assert [c["metric"] for c in page["items"]] == ["M3"] and page["next_cursor"]
    rest = (
        await client.get(
            "/payments/claims", params={"cursor": page["next_cursor"]}, headers=as_actor("cm-ann")
        )
    ).json()
    assert [c["claim_id"] for c in rest["items"]] == [claims["M1"]]
    assert rest["next_cursor"] is None
    only = await client.get(
        "/payments/claims", params={"metric": "M1", "period": "2026-06"}, headers=as_actor("cm-ann")
    )
    assert [c["referral_id"] for c in only.json()["items"]] == ["r-2"]
    bad = await client.get(
        "/payments/claims", params={"status": "settled"}, headers=as_actor("cm-ann")
    )
    assert (bad.status_code, bad.headers["content-type"]) == (422, PROBLEM)


@pytest.mark.both_databases
async def test_a_claim_and_its_evidence_trail(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    claim = (
        await client.get(f"/payments/claims/{claims['M3']}", headers=as_actor("cm-ann"))
    ).json()
    assert (claim["status"], claim["amount_pence"], claim["approvals_needed"]) == (
        "claimed",
        50_000,
        2,
    )
    trail = (
        await client.get(f"/payments/claims/{claims['M3']}/evidence", headers=as_actor("cm-ann"))
    ).json()
    assert trail["rate_card"]["version"] == "2026.1"
    assert all(e["found"] for e in trail["events"])
    assert [m["instrument"] for m in trail["measurements"] if m["counted"]] == ["WEMWBS"] * 2


@pytest.mark.both_databases
async def test_the_lifecycle_through_the_api(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    url = f"/payments/claims/{claims['M3']}"
    assert (await client.post(f"{url}/validate", headers=as_actor("cm-ann"))).json()[
        "status"
    ] == "validated"
    first = (await client.post(f"{url}/approve", headers=as_actor("cm-bob"))).json()
    assert (first["status"], first["approver_ids"]) == ("validated", ["cm-bob"])
    assert (await client.post(f"{url}/approve", headers=as_actor("cm-cat"))).json()[
        "status"
    ] == "approved"
    paid = await client.post(
        f"{url}/paid", json={"payment_ref": "BACS-42"}, headers=as_actor("cm-ann")
    )
    assert paid.json()["status"] == "paid"
    disputed = await client.post(
        f"{url}/dispute", json={"reason_code": "audit_query"}, headers=as_actor("cm-bob")
    )
    assert disputed.json()["status"] == "disputed"
    upheld = await client.post(
        f"{url}/resolve", json={"outcome": "upheld"}, headers=as_actor("cm-cat")
    )
    assert upheld.json()["statuses"][-2:] == ["disputed", "upheld"]


async def test_lifecycle_errors_are_problems(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    url = f"/payments/claims/{claims['M1']}"
    early = await client.post(f"{url}/approve", headers=as_actor("cm-ann"))
    assert (early.status_code, early.headers["content-type"]) == (409, PROBLEM)
    assert "from claimed to approved" in early.json()["detail"]
    await client.post(f"{url}/validate", headers=as_actor("cm-ann"))
    own = await client.post(f"{url}/approve", headers=as_actor("cm-ann"))
    assert (own.status_code, own.json()["title"]) == (403, "Separation of duties")
    free_text = await client.post(
        f"{url}/dispute", json={"reason_code": "he said so"}, headers=as_actor("cm-bob")
    )
    assert free_text.status_code == 422


async def test_a_claim_that_fails_validation_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, engine: Engine, as_actor: Headers
) -> None:
    o = engagement(referral="r-3", consent=False)
    (made,) = deliver(engine_of(app), (envelope(o), o))
    answer = await client.post(
        f"/payments/claims/{claim_id(made.key)}/validate", headers=as_actor("cm-ann")
    )
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
    client: httpx.AsyncClient, method: str, path: str, as_actor: Headers
) -> None:
    answer = await client.request(method, f"/payments{path}", headers=as_actor("cm-ann"))
    assert (answer.status_code, answer.headers["content-type"]) == (404, PROBLEM)
    assert answer.json()["title"] == "Claim not found"


# Reads a Tier One partner shares (scoped to its own claims); tested below.
PARTNER_READS = [
    ("get", "/claims", None),
    ("get", "/claims/{M3}", None),
    ("get", "/claims/{M3}/evidence", None),
    ("get", "/statements", None),
    ("get", "/statements.csv", None),
]
ROUTES = [
    ("post", "/claims/{M3}/validate", None),
    ("post", "/claims/{M3}/approve", None),
    ("post", "/claims/{M3}/dispute", {"reason_code": "x"}),
    ("post", "/claims/{M3}/resolve", {"outcome": "upheld"}),
    ("post", "/claims/{M3}/paid", {"payment_ref": "x"}),
    ("get", "/payer-statements", None),
    ("get", "/payer-statements.csv", None),
    ("get", "/ledger/verify", None),
    ("get", "/ledger/checkpoints", None),
    ("post", "/ledger/checkpoints", None),
    ("post", "/ledger/checkpoints/verify", {"seq": 0, "head_hash": "0" * 64, "signature": "0"}),
    ("get", "/reconciliation", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_is_for_contract_managers_only(
    client: httpx.AsyncClient,
    claims: dict[str, str],
    method: str,
    path: str,
    body: Any,
    as_actor: Headers,
) -> None:
    url = "/payments" + path.format(**claims)
    for role in ("tier_one", "referrer", "admin"):
        answer = await client.request(method, url, json=body, headers=as_actor("someone", role))
        assert (answer.status_code, answer.headers["content-type"]) == (403, PROBLEM)
    anonymous = await client.request(method, url, json=body)
    assert (anonymous.status_code, anonymous.headers["content-type"]) == (401, PROBLEM)


@pytest.mark.parametrize(("method", "path", "body"), PARTNER_READS)
async def test_partner_reads_are_for_contract_managers_and_tier_one_only(
    client: httpx.AsyncClient,
    claims: dict[str, str],
    method: str,
    path: str,
    body: Any,
    as_actor: Headers,
) -> None:
    url = "/payments" + path.format(**claims)
    for role in ("tier_two", "referrer", "admin"):
        answer = await client.request(method, url, json=body, headers=as_actor("someone", role))
        assert (answer.status_code, answer.headers["content-type"]) == (403, PROBLEM)
    for role in ("contract_manager", "tier_one"):
        answer = await client.request(method, url, headers=as_actor("someone", role))
        assert answer.status_code == 200


async def test_a_tier_one_partner_reads_its_own_claims_and_no_one_elses(
    app: FastAPI, engine: Engine, client: httpx.AsyncClient, as_actor: Headers
) -> None:
    """Issue 11: disputes start from the same numbers. North (the token's partner) sees
    its claims, their evidence and statements; south's claim is the same 404 as a claim
    that does not exist, and asking for south's list or statements finds nothing."""
    own, other = engagement(referral="r-n"), engagement(referral="r-s", partner="south-wellbeing")
    publish_evidence(engine, own, other)
    made = deliver(engine_of(app), (envelope(own), own), (envelope(other), other))
    north, south = (claim_id(d.key) for d in made)
    partner = as_actor("north-reader", "tier_one")
    listed = (await client.get("/payments/claims", headers=partner)).json()["items"]
    assert [c["claim_id"] for c in listed] == [north]
    assert (
        await client.get(f"/payments/claims/{north}/evidence", headers=partner)
    ).status_code == 200
    for url in (f"/payments/claims/{south}", f"/payments/claims/{south}/evidence"):
        hidden = await client.get(url, headers=partner)
        unknown = await client.get(f"/payments/claims/{uuid.uuid4()}", headers=partner)
        assert (hidden.status_code, hidden.json()["detail"]) == (404, unknown.json()["detail"])
    theirs = {"partner": "south-wellbeing"}
    assert (await client.get("/payments/claims", params=theirs, headers=partner)).json()[
        "items"
    ] == []
    statements = (await client.get("/payments/statements", headers=partner)).json()
    assert {s["partner_id"] for s in statements} == {"north-wellbeing"}
    assert (await client.get("/payments/statements", params=theirs, headers=partner)).json() == []
    manager = (await client.get("/payments/claims", headers=as_actor("cm-ann"))).json()["items"]
    assert {c["claim_id"] for c in manager} == {north, south}
    refused = await client.post(f"/payments/claims/{north}/validate", headers=partner)
    assert refused.status_code == 403  # read-only


async def test_the_router_takes_its_identity_from_the_bearer_token_alone(
    engine: Engine, claims: dict[str, str], settings: Settings
) -> None:
    """Mounted anywhere, the payment router authenticates as every router does; the old
    ``X-Linkway-Actor`` header is no identity (nothing is written for it)."""
    bare = FastAPI()
    problems.install(bare)
    bare.include_router(router)
    bare.state.settings = settings
    bare.state.deps = SimpleNamespace(payments=payments(engine))
    before = len(ledger(engine))
    async with client_for(bare) as client:
        url = f"/payments/claims/{claims['M1']}/validate"
        header = {"X-Linkway-Actor": "cm-ann; role=contract_manager; partner=commissioner"}
        answer = await client.post(url, headers={**header, "Idempotency-Key": "k-1"})
    assert (answer.status_code, answer.headers["content-type"]) == (401, PROBLEM)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert len(ledger(engine)) == before


@pytest.mark.both_databases
async def test_statements_as_json_and_csv(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    (north,) = (
        await client.get(
            "/payments/statements", params={"period": "2026-06"}, headers=as_actor("cm-ann")
        )
    ).json()
    assert (north["partner_id"], north["total"]["claims"], north["total"]["net_gbp"]) == (
        "north-wellbeing",
        2,
        "750.00",
    )
    assert (north["cap_pence"], north["headroom_pence"]) == (15_000_000, 14_925_000)
    assert set(north["metrics"]) == {"M1", "M3"}
    answer = await client.get("/payments/statements.csv", headers=as_actor("cm-ann"))
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    total = next(r for r in rows if r["metric"] == "ALL")
    assert (total["claimed_pence"], total["claimed_gbp"]) == ("75000", "750.00")


@pytest.mark.both_databases
async def test_ledger_verification_and_checkpoints(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    verified = (await client.get("/payments/ledger/verify", headers=as_actor("cm-ann"))).json()
    assert (verified["ok"], verified["head_seq"]) == (True, 2)
    made = await client.post("/payments/ledger/checkpoints", headers=as_actor("cm-ann"))
    assert made.status_code == 201
    held = made.json()
    assert (held["seq"], held["actor_id"]) == (2, "cm-ann")
    listed = (await client.get("/payments/ledger/checkpoints", headers=as_actor("cm-ann"))).json()
    assert [c["signature"] for c in listed] == [held["signature"]]
    body = {k: held[k] for k in ("seq", "head_hash", "signature")}
    good = (
        await client.post(
            "/payments/ledger/checkpoints/verify", json=body, headers=as_actor("cm-ann")
        )
    ).json()
    assert good["ok"]
    forged = {**body, "signature": "0" * 64}
    bad = (
        await client.post(
            "/payments/ledger/checkpoints/verify", json=forged, headers=as_actor("cm-ann")
        )
    ).json()
    assert not bad["ok"] and "signature is wrong" in bad["reason"]


@pytest.mark.both_databases
async def test_reconciliation(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    report = (await client.get("/payments/reconciliation", headers=as_actor("cm-ann"))).json()
    assert (report["ok"], report["outcome_events"], report["expected_claims"]) == (True, 2, 2)
    assert report["discrepancies"] == []


# --- Idempotency-Key: the casework commands' semantics on every payment command ------------

COMMANDS = [
    ("/claims/{M1}/validate", None),
    ("/claims/{M3}/dispute", {"reason_code": "audit_query"}),
    ("/ledger/checkpoints", None),
    ("/ledger/checkpoints/verify", {"seq": 0, "head_hash": "0" * 64, "signature": "0" * 64}),
]


def state(engine: Engine) -> tuple[int, int]:
    """What a payment command could change: ledger entries and checkpoints."""
    return len(ledger(engine)), len(payments(engine).checkpoints())


@pytest.mark.parametrize(("path", "body"), COMMANDS)
async def test_a_payment_command_without_an_idempotency_key_is_400_and_changes_nothing(
    client: httpx.AsyncClient,
    claims: dict[str, str],
    engine: Engine,
    as_actor: Headers,
    path: str,
    body: Any,
) -> None:
    before = state(engine)
    url = "/payments" + path.format(**claims)
    answer = await client.post(url, json=body, headers=as_actor("cm-ann", key=False))
    assert (answer.status_code, answer.headers["content-type"]) == (400, PROBLEM)
    assert "Idempotency-Key" in answer.json()["detail"]
    assert state(engine) == before


@pytest.mark.both_databases
async def test_a_retried_payment_command_replays_its_answer_and_writes_once(
    client: httpx.AsyncClient, claims: dict[str, str], engine: Engine, as_actor: Headers
) -> None:
    url = f"/payments/claims/{claims['M1']}/validate"
    headers = as_actor("cm-ann", key="validate-once")
    first = await client.post(url, headers=headers)
    written = state(engine)
    # Run again, validating a validated claim would be a 409: the retry gets the answer
    # the first request got instead, and nothing is written twice.
    again = await client.post(url, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and first.json()["status"] == "validated"
    assert state(engine) == written
    made = await client.post("/payments/ledger/checkpoints", headers=as_actor("cm-ann", key="cp"))
    remade = await client.post("/payments/ledger/checkpoints", headers=as_actor("cm-ann", key="cp"))
    assert made.status_code == remade.status_code == 201 and remade.json() == made.json()
    assert len(payments(engine).checkpoints()) == 1


async def test_a_payment_key_reused_with_another_body_or_claim_is_422(
    client: httpx.AsyncClient, claims: dict[str, str], engine: Engine, as_actor: Headers
) -> None:
    url = f"/payments/claims/{claims['M3']}/dispute"
    headers = as_actor("cm-ann", key="dispute-1")
    assert (await client.post(url, json={"reason_code": "audit_query"}, headers=headers)).is_success
    before = state(engine)
    other = await client.post(url, json={"reason_code": "double_count"}, headers=headers)
    assert (other.status_code, other.headers["content-type"]) == (422, PROBLEM)
    assert "different request" in other.json()["detail"]
    assert "double_count" not in other.text
    elsewhere = f"/payments/claims/{claims['M1']}/dispute"
    moved = await client.post(elsewhere, json={"reason_code": "audit_query"}, headers=headers)
    assert moved.status_code == 422
    assert state(engine) == before


@pytest.mark.both_databases
async def test_a_payment_key_still_in_progress_is_409(
    client: httpx.AsyncClient, claims: dict[str, str], engine: Engine, as_actor: Headers
) -> None:
    # The first request is still running: its key is reserved and pending.
    url = f"/payments/claims/{claims['M1']}/validate"
    ann = Caller("cm-ann", "contract_manager", PARTNER_OF["contract_manager"])
    identity = {"path": url, "body": None}
    IdempotencyStore(engine).begin(caller_key(ann), "busy", fingerprint(identity), "r-1")
    before = state(engine)
    answer = await client.post(url, headers=as_actor("cm-ann", key="busy"))
    assert (answer.status_code, answer.headers["content-type"]) == (409, PROBLEM)
    assert answer.headers["retry-after"] == "1"
    assert state(engine) == before


async def test_payment_keys_belong_to_their_caller(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    url = f"/payments/claims/{claims['M3']}"
    assert (await client.post(f"{url}/validate", headers=as_actor("cm-ann"))).is_success
    bob = await client.post(f"{url}/approve", headers=as_actor("cm-bob", key="shared"))
    cat = await client.post(f"{url}/approve", headers=as_actor("cm-cat", key="shared"))
    assert (bob.json()["status"], cat.json()["status"]) == ("validated", "approved")


# --- strict bodies and bounded ids -------------------------------------------------------

BODIES = [
    ("/claims/{M3}/dispute", {"reason_code": "audit_query"}),
    ("/claims/{M3}/resolve", {"outcome": "upheld"}),
    ("/claims/{M3}/paid", {"payment_ref": "BACS-42"}),
    ("/ledger/checkpoints/verify", {"seq": 0, "head_hash": "0" * 64, "signature": "0" * 64}),
]


@pytest.mark.parametrize(("path", "body"), BODIES)
async def test_a_payment_body_with_an_unknown_field_is_refused(
    client: httpx.AsyncClient,
    claims: dict[str, str],
    engine: Engine,
    as_actor: Headers,
    path: str,
    body: dict[str, Any],
) -> None:
    before = state(engine)
    url = "/payments" + path.format(**claims)
    answer = await client.post(url, json={**body, "amount_pence": 1}, headers=as_actor("cm-bob"))
    assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM)
    assert [e["field"] for e in answer.json()["errors"]] == ["body.amount_pence"]
    assert state(engine) == before


async def test_a_checkpoint_seq_beyond_any_ledger_is_refused(
    client: httpx.AsyncClient, claims: dict[str, str], as_actor: Headers
) -> None:
    body = {"seq": 10**30, "head_hash": "0" * 64, "signature": "0" * 64}
    url = "/payments/ledger/checkpoints/verify"
    answer = await client.post(url, json=body, headers=as_actor("cm-ann"))
    assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM)
    assert [e["field"] for e in answer.json()["errors"]] == ["body.seq"]
    assert str(10**30) not in answer.text


@pytest.fixture
def statements_seen(engine: Engine) -> Iterator[list[str]]:
    """Every parameter value the database is sent while the test runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        values = params.values() if isinstance(params, dict) else params or ()
        seen.extend(str(v) for v in values)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


# A NUL byte, an id over 64 characters, a space, a newline.
BAD_IDS = ["bad%00id", "x" * 65, "bad%20id", "bad%0Aid"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/claims/{}"),
        ("get", "/claims/{}/evidence"),
        *[("post", f"/claims/{{}}/{verb}") for verb in ("validate", "approve")],
        ("get", "/claims?contract={}"),
        ("get", "/statements?partner={}"),
    ],
)
async def test_a_malformed_id_is_422_and_never_reaches_the_database(
    client: httpx.AsyncClient,
    claims: dict[str, str],
    as_actor: Headers,
    statements_seen: list[str],
    method: str,
    path: str,
) -> None:
    for bad in BAD_IDS:
        url = "/payments" + path.format(bad)
        answer = await client.request(method, url, headers=as_actor("cm-ann"))
        assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), bad
        detail = answer.json()["detail"]
        assert "pattern" in detail or "at most 64" in detail
    assert not any("bad" in v or "x" * 65 in v for v in statements_seen)
