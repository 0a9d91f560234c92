"""Schemathesis against the published OpenAPI, on the real API, worker and Temporal dev
server: no server error, no undocumented status, no response outside its schema, no
schema-violating request accepted, and every operation that declares bearer auth
refuses a request without a valid token.

Each operation gets at least 100 generated examples (derandomized, so a run is
repeatable) plus schemathesis's coverage cases; a test at the end checks the count. No
operation is excluded; one check is (see EXCLUDED). Each part of the API is fuzzed as
an identity it is open to (casework as the demo Tier One partner, /audit as the admin,
POST /referrals as a referrer). Two in three generated referral ids are swapped for
real referrals in that partner's localities, and some commands get the referral's
current version, so commands reach the workflow's validators with arbitrary bodies.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import free_port, temporal_address
from tests.integration.stack import ThreadedApi

pytestmark = pytest.mark.integration
EXAMPLES = 100
PERSON = {"given_name": "Fuzz", "family_name": "Seed"}
# Schema-valid is not always business-valid: a check digit, a locality no partner serves,
# a command the referral's stage does not allow or an opaque cursor the server did not
# issue are refused with a documented 4xx. Every other built-in check runs.
EXCLUDED = [positive_data_acceptance]


CALLS: Counter[str] = Counter()


# The identity each part of the API is fuzzed as: one its operations are open to.
IDENTITY_BY_PREFIX = {
    "/audit": "admin:linkway-admin",
    "/payments": "contract_manager:commissioner",
    "/provider": "tier_two:walking-group",
    "/directory": "admin:linkway-admin",
}


def identity_for(path: str, method: str) -> str | None:
    if path == "/health":
        return None
    if path == "/referrals" and method == "POST":
        return "referrer:gp-oswestry"
    for prefix, identity in IDENTITY_BY_PREFIX.items():
        if path.startswith(prefix):
            return identity
    return "tier_one:north-wellbeing"


@pytest.fixture(scope="module")
def api(dev_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedApi]:
    with ThreadedApi(
        temporal_address(dev_env),
        tmp_path_factory.mktemp("schemathesis"),
        free_port(),
        # The fuzzer is one caller sending thousands of requests: lift its rate limit.
        api_rate_per_second=100_000.0,
        api_rate_burst=100_000,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def referral_ids(api: ThreadedApi) -> list[str]:
    ids = []
    with httpx.Client(base_url=api.base_url, timeout=30) as http:
        for locality in ("oswestry", "shrewsbury", "oswestry"):
            body = {
                "locality": locality,
                "source": "gp",
                "referrer_org_id": "gp-1",
                "consent_to_share": True,
                "person": PERSON,
            }
            made = http.post(
                "/referrals", json=body, headers=api.auth("referrer:gp-oswestry", True)
            )
            assert made.status_code == 201, made.text
            ids.append(made.json()["referral_id"])
        accepted = http.post(
            f"/referrals/{ids[1]}/accept",
            json={"expected_version": 1, "link_worker_id": "lw-1"},
            headers=api.auth("tier_one:north-wellbeing", True),
        )
        assert accepted.status_code == 200, accepted.text
    return ids


# The published document (a unit test keeps it identical to what the app serves).
# A schema-violating body can also be refused for its size (413, the API's body limit)
# before its content is read: that is a rejection too.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        }
    }
)
schema = schemathesis.openapi.from_path(
    Path(__file__).parents[2] / "docs" / "api" / "openapi.json", config=CONFIG
)


def steer(case: schemathesis.Case) -> None:
    """Keep two in three schema-valid cases on paths that get past the first refusal: a fresh
    Idempotency-Key (the fuzzer's favourite "0" is otherwise reused with another body) and,
    for a new referral, a locality the referrer can refer to and no NHS number."""
    seed = zlib.crc32(repr((case.body, case.query)).encode())
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if seed % 3 == 0 or not positive:
        return
    if case.headers and isinstance(case.headers.get("Idempotency-Key"), str):
        case.headers["Idempotency-Key"] = f"fuzz-{seed:08x}-{CALLS.total()}"
    person = case.body.get("person") if isinstance(case.body, dict) else None
    if isinstance(case.body, dict) and isinstance(case.body.get("locality"), str):
        case.body["locality"] = "oswestry" if seed % 2 else "shrewsbury"
    if isinstance(person, dict) and isinstance(person.get("nhs_number"), str):
        person["nhs_number"] = None


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,  # derandomized: nothing to remember between runs
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi(
    case: schemathesis.Case, api: ThreadedApi, referral_ids: list[str]
) -> None:
    params = case.path_parameters or {}
    identity = identity_for(case.operation.path, case.method.upper())
    headers = api.auth(identity) if identity else {}
    steer(case)
    if "referral_id" in params:
        drawn = zlib.crc32(str(params["referral_id"]).encode())
        if drawn % 3:
            params["referral_id"] = referral_ids[drawn % len(referral_ids)]
        body = case.body
        positive = case.meta is not None and case.meta.generation.mode.is_positive
        if positive and drawn % 3 == 2 and isinstance(body, dict) and "expected_version" in body:
            # A current version gets past optimistic concurrency to the stage and data rules.
            seen = httpx.get(f"{api.base_url}/referrals/{params['referral_id']}", headers=headers)
            body["expected_version"] = seen.json()["version"]
    CALLS[case.operation.label] += 1
    case.call_and_validate(
        base_url=api.base_url, headers=headers, timeout=30, excluded_checks=EXCLUDED
    )


def test_every_operation_got_at_least_100_examples() -> None:
    """Runs after the fuzzing above (same module, declared after it)."""
    if not CALLS:
        pytest.skip("the schemathesis test did not run in this session")
    operations = {op.ok().label for op in schema.get_all_operations()}
    print("\nschemathesis requests per operation:")
    for label in sorted(operations):
        print(f"  {CALLS[label]:5d}  {label}")
    # An operation that takes no input at all (no parameters, no body: /health, the ledger
    # verification) has only a handful of distinct requests to make.
    no_input = {
        op.ok().label
        for op in schema.get_all_operations()
        if not op.ok().definition.raw.get("parameters")
        and "requestBody" not in op.ok().definition.raw
    }
    short = {op: CALLS[op] for op in operations - no_input if CALLS[op] < EXAMPLES}
    assert "GET /health" in no_input and "POST /referrals" not in no_input
    assert not short, short
