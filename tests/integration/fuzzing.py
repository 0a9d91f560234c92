"""The machinery of the schemathesis run, shared by its modules (``test_api_fuzz_*.py``,
one per route group, and ``test_api_schemathesis_postgresql.py``).

Schemathesis against the published OpenAPI, on the real API, worker and Temporal dev
server: no server error, no undocumented status, no response outside its schema, no
schema-violating request accepted, and every operation that declares bearer auth
refuses a request without a valid token.

Each operation gets at least 100 generated examples (derandomized, so a run is
repeatable) plus schemathesis's coverage cases; a test at the end of each group's module
checks the count over exactly that group's operations. No operation is excluded; one
check is (see EXCLUDED). Each part of the API is fuzzed as an identity it is open to
(casework as the demo Tier One partner, /audit as the admin, POST /referrals as a
referrer). Two in three generated referral ids are swapped for real referrals in that
partner's localities, and some commands get the referral's current version, so commands
reach the workflow's validators with arbitrary bodies.

Stateful too (in the casework module): the document's links (``api.links``) let
schemathesis chain calls, so bounded scenarios make a referral and then read, command and
annotate it by the id the response gave, held to the same checks.

Hostile input on top of what schemathesis draws (issue 17): one in four cases has a
path parameter or a body string swapped for a NUL, another control character, a line
separator or an NHS number in fullwidth or Arabic-Indic digits; one in eight is sent
again with a chunked body (and some of those padded past the body limit, which must be
413 even where the route reads no body). No 5xx, ever.

Route groups: an operation belongs to the group of its path's first segment (GROUPS);
a segment no group names falls to FALLBACK, so a new route is fuzzed somewhere the day
it is added. ``test_api_fuzz_groups.py`` checks that every operation of the document is
fuzzed by exactly one module. The groups are separate modules so that pytest-xdist
(``--dist loadfile``) can run them on separate workers, each with its own API.

Cost: every module keeps one keep-alive ``requests`` session for schemathesis and one
``httpx`` client for the extra requests (a referral's current version, the chunked
re-send), rather than a new connection per request.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import free_port, temporal_address
from tests.integration.stack import ThreadedApi

EXAMPLES = 100
# Seconds spent sending and checking each operation's cases (not generating them).
SECONDS: Counter[str] = Counter()
PERSON = {"given_name": "Fuzz", "family_name": "Seed"}
# Schema-valid is not always business-valid: a check digit, a locality no partner serves,
# a command the referral's stage does not allow or an opaque cursor the server did not
# issue are refused with a documented 4xx. Every other built-in check runs.
EXCLUDED = [positive_data_acceptance]

# A path's first segment ("/payments/payer-statements.csv" -> "payments") -> its group.
# Anything not named here (a route added since) is fuzzed with FALLBACK.
GROUPS: dict[str, tuple[str, ...]] = {
    "casework": ("referrals", "caseload", "activities"),
    "providers": ("provider", "directory"),
    "payments": ("payments",),
    "fhir": ("fhir",),
    "service": (
        *("funds", "equality", "dashboard", "reports", "evaluation"),
        *("audit", "health", "livez", "readyz"),
    ),
}
FALLBACK = "service"

# 3828966551 is a valid NHS number; its digits in other scripts are not ASCII digits.
HOSTILE = [
    "\x00",
    "a\x00b",
    "\x1b[2J",
    "line\u2028break",
    "\x7f\x85",
    "\t\r\n",
    "３８２８９６６５５１",  # noqa: RUF001 (fullwidth digits, on purpose)
    "٣٨٢٨٩٦٦٥٥١",
]


# The identity each part of the API is fuzzed as: one its operations are open to.
IDENTITY_BY_PREFIX = {
    "/audit": "admin:linkway-admin",
    "/payments": "contract_manager:commissioner",
    "/provider": "tier_two:walking-group",
    "/fhir/Task": "tier_two:walking-group",
    "/directory": "admin:linkway-admin",
    "/reports": "contract_manager:commissioner",
    "/evaluation": "contract_manager:commissioner",
}


def group_of(path: str) -> str:
    """The route group an API path is fuzzed in."""
    segment = path.lstrip("/").split("/", 1)[0].split(".", 1)[0]
    for group, segments in GROUPS.items():
        if segment in segments:
            return group
    return FALLBACK


def identity_for(path: str, method: str) -> str | None:
    if path == "/health":
        return None
    if (path, method) in (("/referrals", "POST"), ("/fhir/ServiceRequest", "POST")):
        return "referrer:gp-oswestry"
    if path.endswith("/message-back"):
        return "referrer:gp-oswestry"  # the referring practice's alone
    if (path, method) in (("/funds", "POST"), ("/funds/{fund_id}/budget", "POST")):
        return "contract_manager:commissioner"  # opening a fund and its budget are theirs
    for prefix, identity in IDENTITY_BY_PREFIX.items():
        if path.startswith(prefix):
            return identity
    return "tier_one:north-wellbeing"


def serve(dev_env: Any, data_dir: Path, **overrides: Any) -> ThreadedApi:
    return ThreadedApi(
        temporal_address(dev_env),
        data_dir,
        free_port(),
        # The fuzzer is one caller sending thousands of requests: lift its rate limit.
        api_rate_per_second=100_000.0,
        api_rate_burst=100_000,
        **overrides,
    )


class Fuzzer:
    """One running API, its seeded referrals and the keep-alive connections to it."""

    def __init__(self, api: ThreadedApi) -> None:
        self.api = api
        self.session = requests.Session()  # schemathesis sends through requests
        self.http = httpx.Client(base_url=api.base_url, timeout=60)
        self.referral_ids = seed_referrals(self.http, api)

    def close(self) -> None:
        self.session.close()
        self.http.close()


def fuzzer_on(api: ThreadedApi) -> Iterator[Fuzzer]:
    running = Fuzzer(api)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def fuzzer(dev_env: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    """A module's own API (SQLite) with its referrals seeded."""
    with serve(dev_env, tmp_path_factory.mktemp("schemathesis")) as api:
        yield from fuzzer_on(api)


def seed_referrals(http: httpx.Client, api: ThreadedApi) -> list[str]:
    ids = []
    for locality in ("oswestry", "shrewsbury", "oswestry"):
        body = {
            "locality": locality,
            "source": "gp",
            "referrer_org_id": "gp-1",
            "consent_to_share": True,
            "person": PERSON,
        }
        made = http.post("/referrals", json=body, headers=api.auth("referrer:gp-oswestry", True))
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
DOCUMENT = Path(__file__).parents[2] / "docs" / "api" / "openapi.json"


def load_schema() -> BaseSchema:
    return schemathesis.openapi.from_path(DOCUMENT, config=CONFIG)


def group_schema(group: str) -> BaseSchema:
    """The document's operations of one route group."""
    assert group in GROUPS, group
    return load_schema().include(lambda ctx: group_of(ctx.operation.path) == group)


def labels(schema: BaseSchema) -> set[str]:
    return {op.ok().label for op in schema.get_all_operations()}


def steer(case: schemathesis.Case, sent: int) -> None:
    """Keep two in three schema-valid cases on paths that get past the first refusal: a fresh
    Idempotency-Key (the fuzzer's favourite "0" is otherwise reused with another body) and,
    for a new referral, a locality the referrer can refer to and no NHS number."""
    seed = zlib.crc32(repr((case.body, case.query)).encode())
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if seed % 3 == 0 or not positive:
        return
    if case.headers and isinstance(case.headers.get("Idempotency-Key"), str):
        case.headers["Idempotency-Key"] = f"fuzz-{seed:08x}-{sent}"
    person = case.body.get("person") if isinstance(case.body, dict) else None
    if isinstance(case.body, dict) and isinstance(case.body.get("locality"), str):
        case.body["locality"] = "oswestry" if seed % 2 else "shrewsbury"
    if isinstance(person, dict) and isinstance(person.get("nhs_number"), str):
        person["nhs_number"] = None


def strings(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """The location of every string in a JSON body."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings(item, (*path, i))


def set_at(body: Any, path: tuple, value: str) -> None:
    for step in path[:-1]:
        body = body[step]
    body[path[-1]] = value


def make_hostile(case: schemathesis.Case, seed: int, positive: bool) -> bool:
    """One in four schema-valid cases: a path parameter or a body string becomes a hostile
    one. (A negative case is left as drawn: its checks expect the flaw schemathesis put
    in, which a swap could remove.)"""
    if seed % 4 != 1 or not positive:
        return False
    bad = HOSTILE[(seed >> 2) % len(HOSTILE)]
    person = case.body.get("person") if isinstance(case.body, dict) else None
    if isinstance(person, dict) and (seed >> 5) % 2:
        person["nhs_number"] = HOSTILE[-1 - (seed >> 6) % 2]  # the same number, twice over
        return True
    places = [("path", name) for name in sorted(case.path_parameters or {})]
    places += [("body", where) for where in strings(case.body) if where]
    if not places:
        return False
    kind, where = places[(seed >> 7) % len(places)]
    if kind == "path":
        assert case.path_parameters is not None
        case.path_parameters[where] = bad
    else:
        set_at(case.body, where, bad)
    return True


def send_chunked(case: schemathesis.Case, fuzz: Fuzzer, headers: dict, seed: int) -> None:
    """One in eight cases with a body again, chunked; a few padded past the body limit."""
    if seed % 8 != 3 or not isinstance(case.body, dict | list):
        return
    raw = json.dumps(case.body).encode()
    oversize = (seed >> 3) % 4 == 0
    if oversize:
        raw += b" " * (fuzz.api.settings.api_max_body_bytes + 1)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(raw), 16_384):
            yield raw[i : i + 16_384]

    url = case.operation.path
    for name, value in (case.path_parameters or {}).items():
        url = url.replace(f"{{{name}}}", quote(str(value), safe=""))
    answer = fuzz.http.request(
        case.method,
        url,
        params=case.query,
        content=chunks(),
        headers={
            **headers,
            # The case's own key (a fresh one after steer), not whatever else it drew.
            **{
                k: v
                for k, v in (case.headers or {}).items()
                if k == "Idempotency-Key" and isinstance(v, str) and v.isprintable() and v.isascii()
            },
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code < 500, (case.operation.label, answer.status_code, answer.text)
    if oversize:
        assert answer.status_code == 413, (case.operation.label, answer.status_code)


DECLARED = json.loads(DOCUMENT.read_text())  # what each operation declares


def send_undeclared(case: schemathesis.Case) -> None:
    """An undeclared query parameter drawn with the value null (or an empty list) is
    dropped by the HTTP client, so the "invalid" request that reaches the API is a valid
    one: send it empty instead, so that the flaw schemathesis put in is the one the API
    sees (and refuses)."""
    declared = {
        p["name"]
        for p in DECLARED["paths"]
        .get(case.operation.path, {})
        .get(case.method.lower(), {})  # the coverage phase also tries undeclared methods
        .get("parameters", [])
        if p["in"] == "query"
    }
    for name, value in list((case.query or {}).items()):
        if value in (None, []) and name not in declared:
            case.query[name] = ""


def negates_authorization(case: schemathesis.Case) -> bool:
    """A negative case whose flaw is its Authorization header (missing or malformed): sent
    as drawn, without the identity's token, which would otherwise mend it."""
    data = case.meta.phase.data if case.meta is not None else None
    return (
        case.meta is not None
        and not case.meta.generation.mode.is_positive
        and any(
            (m.parameter or "").lower() == "authorization" for m in getattr(data, "mutations", ())
        )
    )


def run_case(case: schemathesis.Case, fuzz: Fuzzer, calls: Counter[str]) -> None:
    calls[case.operation.label] += 1
    started = time.perf_counter()
    try:
        send_case(case, fuzz, calls)
    finally:
        SECONDS[case.operation.label] += time.perf_counter() - started


def send_case(case: schemathesis.Case, fuzz: Fuzzer, calls: Counter[str]) -> None:
    send_undeclared(case)
    params = case.path_parameters or {}
    identity = identity_for(case.operation.path, case.method.upper())
    headers = fuzz.api.auth(identity) if identity and not negates_authorization(case) else {}
    steer(case, calls.total())
    seed = zlib.crc32(repr((case.body, case.query, case.path_parameters)).encode())
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if "referral_id" in params:
        drawn = zlib.crc32(str(params["referral_id"]).encode())
        # Only a schema-valid id is swapped: a negative case's id (now with a declared
        # pattern, often the very thing it gets wrong) must stay wrong to be refused.
        if drawn % 3 and positive:
            params["referral_id"] = fuzz.referral_ids[drawn % len(fuzz.referral_ids)]
        body = case.body
        if positive and drawn % 3 == 2 and isinstance(body, dict) and "expected_version" in body:
            # A current version gets past optimistic concurrency to the stage and data rules.
            seen = fuzz.http.get(f"/referrals/{params['referral_id']}", headers=headers)
            body["expected_version"] = seen.json()["version"]
    # A hostile case is invalid whatever schemathesis drew it as; positive_data_acceptance
    # is excluded, so every other check holds it to a documented refusal, never a 5xx.
    make_hostile(case, seed, positive)
    case.call_and_validate(
        base_url=fuzz.api.base_url,
        session=fuzz.session,
        headers=headers,
        timeout=60,
        excluded_checks=EXCLUDED,
    )
    send_chunked(case, fuzz, headers, seed)


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,  # derandomized: nothing to remember between runs
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


# Stateful: chains of calls that follow the document's links (api.links): a referral is
# made, then read, commanded and annotated by the id its response gave. Bounded so the
# run adds well under half a minute: scenarios x steps calls at most.
SCENARIOS, STEPS = 15, 6
CHAINED: Counter[str] = Counter()


def referral_machine() -> type:
    """The state machine over the referral operations, every scenario starting with
    ``POST /referrals``. Schemathesis picks its own entry points from what it infers of
    the resources and, here, never the creating call; it is made the only one."""
    from unittest import mock

    from schemathesis.specs.openapi import stateful

    def creates(operation: Any, *_: Any) -> bool:
        return operation.label == "POST /referrals"

    with mock.patch.object(stateful, "is_likely_root_transition", creates):
        return load_schema().include(path_regex="^/referrals").as_state_machine()


class Chained(referral_machine()):  # type: ignore[misc]
    """Each call as the identity its part of the API is open to, steered like the
    stateless run (a fresh Idempotency-Key, a served locality, no NHS number), and held
    to the same checks: no 5xx, no undocumented status, no response outside its schema."""

    fuzz: Fuzzer
    made: set[str] = set()

    def before_call(self, case: schemathesis.Case) -> None:
        steer(case, CHAINED.total())
        if (case.path_parameters or {}).get("referral_id") in self.made:
            CHAINED[case.operation.label] += 1

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        identity = identity_for(case.operation.path, case.method.upper())
        headers = self.fuzz.api.auth(identity) if identity else {}
        return {
            "base_url": self.fuzz.api.base_url,
            "session": self.fuzz.session,
            "headers": headers,
            "timeout": 60,
        }

    def after_call(self, response: Any, case: schemathesis.Case) -> None:
        super().after_call(response, case)
        if case.operation.label == "POST /referrals" and response.status_code in (200, 201):
            self.made.add(response.json()["referral_id"])

    def validate_response(
        self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        case.validate_response(
            response,
            excluded_checks=EXCLUDED,
            transport_kwargs=kwargs or None,
            recorder=getattr(self, "recorder", None),
        )


def run_chained(fuzz: Fuzzer, scenarios: int = SCENARIOS) -> None:
    Chained.fuzz = fuzz
    Chained.run(settings=settings(FUZZ, max_examples=scenarios, stateful_step_count=STEPS))


def without_input(schema: BaseSchema) -> set[str]:
    """Operations that take no input at all (no parameters, no body: /health, the ledger
    verification): they have only a handful of distinct requests to make."""
    return {
        op.ok().label
        for op in schema.get_all_operations()
        if not op.ok().definition.raw.get("parameters")
        and "requestBody" not in op.ok().definition.raw
    }


def check_examples(schema: BaseSchema, calls: Counter[str]) -> None:
    """Every operation of ``schema`` that takes input got at least EXAMPLES requests."""
    if not calls:
        pytest.skip("the schemathesis test did not run in this session")
    operations = labels(schema)
    print("\nschemathesis requests per operation (and seconds sending and checking them):")
    for label in sorted(operations):
        print(f"  {calls[label]:5d}  {SECONDS[label]:6.1f}s  {label}")
    short = {op: calls[op] for op in operations - without_input(schema) if calls[op] < EXAMPLES}
    assert not short, short
    assert not set(calls) - operations, set(calls) - operations
