"""Every endpoint x every demo identity, on the real API, worker and Temporal dev server.

Two Tier One partners (north: oswestry and shrewsbury; south: ludlow) each hold one
referral, made by a different GP practice. For every operation and identity: a role the
operation is not open to gets 403 whatever the target; an object outside the caller's
scope gets exactly the answer a missing one gets (same status, headers and body but for
the id in ``instance``); lists hold only what is in scope; and nothing any identity does
changes, reads or audits a referral outside its scope.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select

from api.personal_data import AuditRecord, EqualityRecord, NoteRecord, PersonRecord
from api.tenancy import load
from infra.db import get_engine
from pathway.rules import COMMANDS
from tests.conftest import free_port, temporal_address
from tests.integration.stack import ThreadedApi

pytestmark = pytest.mark.integration

# Every partner's demo token (a Tier One partner's is its manager's) and a plain Tier One
# link worker's: a link worker has every permission its manager has (only their capacity
# and time views narrow to their own: tests/integration/test_worktime.py).
IDENTITIES = sorted([*(f"{p.role}:{p.id}" for p in load().partners), "link_worker:north-wellbeing"])


def role_of(identity: str) -> str:
    role = identity.split(":")[0]
    return "tier_one" if role == "link_worker" else role


WEMWBS = {
    "instrument": "WEMWBS",
    "consent_ref": "c-1",
    "answers": {str(i): 3 for i in range(1, 15)},
}
# A phone call a minute ago: inside any referral's time, whenever the test runs.
ACTIVITY = {
    "activity_type": "phone",
    "direct": True,
    "started_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    "minutes": 10,
}
COMMAND_BODIES: dict[str, dict[str, Any]] = {
    "accept": {},
    "decline": {"reason_code": "out_of_area"},
    "link-worker": {"link_worker_id": "lw-2"},
    "contact-attempts": {"outcome": "no_answer"},
    "assessment": {"support_level": "2"},
    "plan": {"goal_count": 1},
    "checkin": {"on_track": True},
    "review": {"decision": "ongoing_support"},
    "followup": {"measures": [WEMWBS]},
    "reenter": {"source": "gp", "referrer_org_id": "gp-1"},
    "end-episode": {"reason_code": "withdrawn"},
    "consent/withdraw": {},
    "consent/give": {},
    "deadlines": {"deadline": "first_contact", "due_at": "2030-01-01T00:00:00Z"},
    "handoffs/cancel": {"handoff_id": "h-1", "reason_code": "no_longer_needed"},
    "completion-report": {"ongoing_plan": ["self_managing"]},
    "signpost-check": {"outcome": "connected"},
    "activities": {**ACTIVITY},
    "activities/correct": {**ACTIVITY, "activity_id": "a-1"},
    "activities/delete": {"activity_id": "a-1", "reason_code": "logged_in_error"},
}
READERS = {"referrer", "tier_one", "contract_manager", "admin"}
PAYMENT_ACTIONS = ("approve", "dispute", "paid", "resolve", "validate")
VIEWERS = {"tier_one", "contract_manager", "admin"}
FUND_ACTIONS = ("approve", "refuse", "spend", "cancel")


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    roles: frozenset[str]
    body: dict[str, Any] | None = None
    creates: bool = False  # needs an Idempotency-Key
    versioned: bool = False  # a command: carries expected_version
    # Not about referrals (provider handoffs, the directory, the payment engine): only the
    # role is checked here; the scoping of their own objects is tested with them.
    role_only: bool = False

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def operations() -> list[Op]:
    person = {"given_name": "Matrix", "family_name": "Tester"}
    ops = [
        Op("POST", "/referrals", frozenset({"referrer", "tier_one"}), None, True),
        Op("GET", "/referrals", frozenset(READERS)),
        Op("GET", "/referrals/{referral_id}/status", frozenset(READERS)),
        Op("GET", "/referrals/{referral_id}", frozenset(VIEWERS)),
        Op("GET", "/referrals/{referral_id}/person", frozenset({"tier_one"})),
        Op("PUT", "/referrals/{referral_id}/person", frozenset({"tier_one"}), person),
        Op("POST", "/referrals/{referral_id}/notes", frozenset({"tier_one"}), {"text": "n"}, True),
        Op("GET", "/referrals/{referral_id}/notes", frozenset({"tier_one"})),
        Op("PUT", "/referrals/{referral_id}/equality", frozenset({"tier_one"}), {"carer": "no"}),
        Op("GET", "/referrals/{referral_id}/equality", frozenset({"tier_one"})),
        Op("GET", "/caseload", frozenset(VIEWERS)),
        Op("GET", "/referrals/{referral_id}/activities", frozenset(VIEWERS)),
        # Sums over the caller's scope; that scoping is tested with them (test_worktime.py).
        Op("GET", "/activities/summary", frozenset(VIEWERS), role_only=True),
        Op("GET", "/caseload/capacity", frozenset(VIEWERS), role_only=True),
        Op("GET", "/audit", frozenset({"admin"})),
        # Only once an episode has ended with a report; its scoping is tested with it
        # (tests/integration/test_completion_report.py).
        # The message back carries the NHS number: the referring practice's alone.
        Op("GET", "/referrals/{referral_id}/message-back", frozenset({"referrer"})),
        Op("GET", "/fhir/ServiceRequest/{referral_id}", frozenset(READERS)),
        Op("GET", "/fhir/ServiceRequest", frozenset(READERS)),
        Op(
            "GET",
            "/referrals/{referral_id}/completion-report",
            frozenset({"tier_one"}),
            role_only=True,
        ),
    ]
    everyone = frozenset(role_of(r) for r in IDENTITIES)
    for method, path, roles in [
        ("GET", "/directory/services", everyone),
        ("GET", "/directory/services/{service_id}", everyone),
        ("GET", "/directory/organizations", everyone),
        ("PUT", "/directory/organizations/{organization_id}", frozenset({"admin"})),
        ("PUT", "/directory/services/{service_id}", frozenset({"admin"})),
        ("PUT", "/directory/services/{service_id}/capacity", frozenset({"admin"})),
        ("POST", "/directory/import", frozenset({"admin"})),
        ("GET", "/fhir/metadata", everyone),
        # A referral made through the facade: its scoping is POST /referrals's own path.
        ("POST", "/fhir/ServiceRequest", frozenset({"referrer", "tier_one"})),
        ("GET", "/fhir/Task", frozenset({"tier_two"})),
        ("GET", "/fhir/Task/{handoff_id}", frozenset({"tier_two"})),
        ("PUT", "/fhir/Task/{handoff_id}", frozenset({"tier_two"})),
        ("PATCH", "/fhir/Task/{handoff_id}", frozenset({"tier_two"})),
        # The dashboard's panels: the KPIs, for contract managers and Tier One partners
        # (scoped in api.dashboard.sources; tests/integration/test_dashboard_browser.py).
        ("GET", "/dashboard/panels/{panel}", frozenset({"contract_manager", "tier_one"})),
        ("GET", "/dashboard/panels/{panel}.csv", frozenset({"contract_manager", "tier_one"})),
        ("GET", "/provider/handoffs", frozenset({"tier_two"})),
        ("GET", "/provider/handoffs/{handoff_id}", frozenset({"tier_two"})),
        ("GET", "/provider/handoffs/{handoff_id}/contact", frozenset({"tier_two"})),
        ("POST", "/provider/attendance", frozenset({"tier_two"})),
        *[
            ("POST", f"/provider/handoffs/{{handoff_id}}/{verb}", frozenset({"tier_two"}))
            for verb in ("accept", "start", "reject", "waitlist", "complete", "attendance")
        ],
        *[
            (method, f"/payments{tail}", frozenset({"contract_manager", "tier_one"}))
            for method, tail in [
                ("GET", "/claims"),
                ("GET", "/claims/{claim_id}"),
                ("GET", "/claims/{claim_id}/evidence"),
                ("GET", "/statements"),
                ("GET", "/statements.csv"),
            ]
        ],
        ("GET", "/reports", frozenset({"contract_manager", "tier_one"})),
        ("GET", "/reports/filters", frozenset({"contract_manager", "tier_one"})),
        ("GET", "/reports/{kpi}", frozenset({"contract_manager", "tier_one"})),
        ("GET", "/reports/{kpi}.csv", frozenset({"contract_manager", "tier_one"})),
        ("GET", "/evaluation/episodes.csv", frozenset({"contract_manager"})),
        ("GET", "/evaluation/episodes.parquet", frozenset({"contract_manager"})),
        *[
            (method, f"/payments{tail}", frozenset({"contract_manager"}))
            for method, tail in [
                *[("POST", f"/claims/{{claim_id}}/{v}") for v in PAYMENT_ACTIONS],
                ("GET", "/ledger/checkpoints"),
                ("POST", "/ledger/checkpoints"),
                ("POST", "/ledger/checkpoints/verify"),
                ("GET", "/ledger/verify"),
                ("GET", "/reconciliation"),
                ("GET", "/payer-statements"),
                ("GET", "/payer-statements.csv"),
            ]
        ],
        # The Well-being Action Fund: its own scoping (a partner's grants) is tested in
        # tests/integration/test_fund_api.py.
        ("POST", "/funds", frozenset({"contract_manager"})),
        ("POST", "/funds/{fund_id}/budget", frozenset({"contract_manager"})),
        ("POST", "/funds/{fund_id}/grants", frozenset({"tier_one"})),
        *[
            (method, f"/funds{tail}", frozenset({"contract_manager", "tier_one"}))
            for method, tail in [
                ("GET", ""),
                ("GET", "/{fund_id}"),
                ("GET", "/{fund_id}/statement"),
                ("GET", "/{fund_id}/statement.csv"),
                ("GET", "/{fund_id}/grants"),
                ("GET", "/{fund_id}/grants/{grant_id}"),
                *[("POST", f"/{{fund_id}}/grants/{{grant_id}}/{v}") for v in FUND_ACTIONS],
            ]
        ],
        ("GET", "/equality/report", frozenset({"contract_manager", "tier_one"})),
    ]:
        ops.append(Op(method, path, roles, role_only=True))
    for spec in COMMANDS:
        body = COMMAND_BODIES[spec.path]
        url = f"/referrals/{{referral_id}}/{spec.path}"
        ops.append(Op("POST", url, frozenset({"tier_one"}), body, creates=True, versioned=True))
    return ops


@pytest.fixture(scope="module")
def api(dev_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedApi]:
    with ThreadedApi(
        temporal_address(dev_env),
        tmp_path_factory.mktemp("matrix"),
        free_port(),
        api_rate_per_second=10_000.0,  # a few identities sending many requests
        api_rate_burst=10_000,
    ) as running:
        yield running


@pytest.fixture
async def http(api: ThreadedApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
        yield client


async def refer(http: httpx.AsyncClient, api: ThreadedApi, referrer: str, locality: str) -> str:
    body = {
        "locality": locality,
        "source": "gp",
        "referrer_org_id": "gp-1",
        "consent_to_share": True,
        "person": {"given_name": "Matrix", "family_name": "Person"},
    }
    made = await http.post("/referrals", json=body, headers=api.auth(referrer, True))
    assert made.status_code == 201, made.text
    return str(made.json()["referral_id"])


def footprint(api: ThreadedApi, referral_id: str, version: int) -> tuple:
    """Everything a write or an audited read would change for one referral."""
    with Session(get_engine(api.settings)) as session:
        person = session.get(PersonRecord, referral_id)
        notes = session.exec(
            select(func.count()).where(col(NoteRecord.referral_id) == referral_id)
        ).one()
        audits = session.exec(
            select(func.count()).where(col(AuditRecord.referral_id) == referral_id)
        ).one()
        equality = session.get(EqualityRecord, referral_id)
    answers = equality.ciphertext if equality else None
    return version, person.ciphertext if person else None, notes, audits, answers


async def version_of(http: httpx.AsyncClient, api: ThreadedApi, referral_id: str) -> int:
    seen = await http.get(f"/referrals/{referral_id}", headers=api.auth("admin:linkway-admin"))
    return int(seen.json()["version"])


def same_answer(a: httpx.Response, b: httpx.Response, a_id: str, b_id: str) -> bool:
    def norm(r: httpx.Response, rid: str) -> tuple:
        return r.status_code, r.headers["content-type"], r.text.replace(rid, "<id>")

    return norm(a, a_id) == norm(b, b_id)


async def call(
    http: httpx.AsyncClient, api: ThreadedApi, identity: str, op: Op, referral_id: str = ""
) -> httpx.Response:
    body = op.body
    if op.versioned:
        # The current version, so that only authorisation can stop the write.
        seen = await http.get(f"/referrals/{referral_id}", headers=api.auth("admin:linkway-admin"))
        version = seen.json()["version"] if seen.status_code == 200 else 1
        body = {**(body or {}), "expected_version": version}
    if op.path == "/referrals":
        body = {
            "locality": "ludlow" if identity.endswith("south-wellbeing") else "oswestry",
            "source": "gp",
            "referrer_org_id": "gp-1",
            "consent_to_share": True,
            "person": {"given_name": "Matrix", "family_name": "New"},
        }
    url = op.path.replace("{referral_id}", referral_id)
    # A personal-data read must say why.
    reads = op.method == "GET" and op.path.endswith(("/person", "/notes", "/equality"))
    params = {"purpose": "direct_care"} if reads else None
    return await http.request(
        op.method, url, json=body, params=params, headers=api.auth(identity, op.creates)
    )


async def test_every_endpoint_for_every_identity(http: httpx.AsyncClient, api: ThreadedApi) -> None:
    north = await refer(http, api, "referrer:gp-oswestry", "oswestry")
    south = await refer(http, api, "referrer:gp-ludlow", "ludlow")
    scope = {
        "tier_one:north-wellbeing": {north},
        "link_worker:north-wellbeing": {north},
        "tier_one:south-wellbeing": {south},
        "referrer:gp-oswestry": {north},
        "referrer:gp-ludlow": {south},
        "contract_manager:commissioner": {north, south},
        "admin:linkway-admin": {north, south},
    }
    ops = operations()
    served = json.loads((await http.get("/openapi.json")).text)["paths"]
    # Open by design: they say nothing of anyone (the dashboard's page and its definitions
    # hold no data; the page asks for a token and sends it with each panel's fetch).
    probes = {"/health", "/livez", "/readyz", "/dashboard", "/dashboard/definitions"}
    every = {f"{m.upper()} {p}" for p, item in served.items() for m in item if p not in probes}
    assert every == {op.label for op in ops}, "the matrix must cover every endpoint"

    for identity in IDENTITIES:
        role = role_of(identity)
        mine = scope.get(identity, set())
        outside = {north, south} - mine
        before = {r: footprint(api, r, await version_of(http, api, r)) for r in outside}
        for op in ops:
            if op.role_only:
                url = re.sub(r"\{[a-z_]+\}", "no-such-id", op.path)
                answer = await http.request(op.method, url, headers=api.auth(identity, True))
                if role not in op.roles:
                    assert answer.status_code == 403, (identity, op.label, answer.text)
                else:
                    assert answer.status_code not in (401, 403), (identity, op.label, answer.text)
                continue
            if "{referral_id}" not in op.path:
                answer = await call(http, api, identity, op)
                if role not in op.roles:
                    assert answer.status_code == 403, (identity, op.label, answer.text)
                    continue
                assert answer.status_code in (200, 201), (identity, op.label, answer.text)
                for other in outside:
                    assert other not in answer.text, (identity, op.label, "cross-tenant read")
                continue
            missing = uuid.uuid4().hex
            gone = await call(http, api, identity, op, missing)
            if role not in op.roles:
                assert gone.status_code == 403, (identity, op.label, gone.text)
                for target in (north, south):
                    refused = await call(http, api, identity, op, target)
                    assert same_answer(refused, gone, target, missing), (identity, op.label)
                continue
            assert gone.status_code == 404, (identity, op.label, gone.text)
            for target in outside:
                hidden = await call(http, api, identity, op, target)
                assert same_answer(hidden, gone, target, missing), (identity, op.label, hidden.text)
            for target in mine:
                seen = await call(http, api, identity, op, target)
                assert seen.status_code not in (401, 403, 404), (identity, op.label, seen.text)
        after = {r: footprint(api, r, await version_of(http, api, r)) for r in outside}
        assert after == before, f"{identity} changed, read or audited a referral outside its scope"


async def test_a_tier_one_partner_cannot_refer_into_another_partners_locality(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    body = {
        "source": "self",
        "referrer_org_id": "self",
        "consent_to_share": True,
        "person": {"given_name": "Matrix", "family_name": "Elsewhere"},
    }
    as_north = api.auth("tier_one:north-wellbeing", True)
    theirs = await http.post("/referrals", json={**body, "locality": "ludlow"}, headers=as_north)
    nowhere = await http.post(
        "/referrals",
        json={**body, "locality": "atlantis"},
        headers=api.auth("tier_one:north-wellbeing", True),
    )
    assert theirs.status_code == nowhere.status_code == 422
    assert theirs.json()["detail"] == nowhere.json()["detail"]


async def test_lists_hold_only_what_is_in_scope(http: httpx.AsyncClient, api: ThreadedApi) -> None:
    north = await refer(http, api, "referrer:gp-oswestry", "shrewsbury")
    south = await refer(http, api, "referrer:gp-ludlow", "ludlow")

    async def listed(identity: str, path: str, **params: str) -> set[str]:
        page = await http.get(path, params=params, headers=api.auth(identity))
        assert page.status_code == 200, page.text
        return {item["referral_id"] for item in page.json()["items"]}

    assert north in await listed("referrer:gp-oswestry", "/referrals", limit="200")
    assert south not in await listed("referrer:gp-oswestry", "/referrals", limit="200")
    assert north not in await listed("tier_one:south-wellbeing", "/caseload", limit="200")
    assert south in await listed("tier_one:south-wellbeing", "/caseload", limit="200")
    # Asking for another partner's caseload by name finds nothing, not an error.
    assert not await listed("tier_one:north-wellbeing", "/caseload", partner_id="south-wellbeing")
    both = await listed("contract_manager:commissioner", "/caseload", limit="200")
    assert {north, south} <= both
    status = await http.get(f"/referrals/{north}/status", headers=api.auth("referrer:gp-oswestry"))
    assert set(status.json()) == {
        "referral_id",
        "episode",
        "stage",
        "opened_at",
        "ended_at",
        "dormant_reason",
        "status",
        "reason",
        "milestones",
        "summary",
    }


async def test_a_re_referral_finds_the_case_only_within_the_partner_serving_it(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    person = {"given_name": "Matrix", "family_name": "Mover", "nhs_number": "9434765870"}

    async def refer(referrer: str, locality: str) -> httpx.Response:
        body = {
            "locality": locality,
            "source": "gp",
            "referrer_org_id": "gp-1",
            "consent_to_share": True,
            "person": person,
        }
        return await http.post("/referrals", json=body, headers=api.auth(referrer, True))

    north = await refer("referrer:gp-oswestry", "oswestry")
    south = await refer("referrer:gp-ludlow", "ludlow")  # moved south: a new case there
    assert north.status_code == south.status_code == 201
    assert north.json()["referral_id"] != south.json()["referral_id"]
    # The second GP now refers to the north case too: it joins it, and may see its status.
    joined = await refer("referrer:gp-ludlow", "shrewsbury")
    assert (joined.status_code, joined.json()["referral_id"]) == (200, north.json()["referral_id"])
    status = await http.get(
        f"/referrals/{north.json()['referral_id']}/status", headers=api.auth("referrer:gp-ludlow")
    )
    assert status.status_code == 200
