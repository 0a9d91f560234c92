"""Hostile input against the real API (uvicorn, the worker and the Temporal dev server),
on SQLite and, when ``LINKWAY_TEST_POSTGRES_URL`` is set, on PostgreSQL: the defects found
by black-box testing (issue 17), each with the behaviour that replaced it.

- one NHS number is one person, in whatever digits it is written;
- NUL bytes, control characters and over-long values are refused with a 4xx problem,
  never a database error answered 500;
- the body limit holds however the body is framed, on routes that never read a body;
- provider bodies refuse unknown fields, and attendance outside a plausible window;
- error bodies name the field and the route template, never what was sent;
- an unexpected error logs a correlation id and the exception type, nothing more;
- personal-data writes answer 503 when the audit log is down, and reads must say why.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from events.nhs_number import nhs_number_is_valid
from infra.db import get_engine
from tests.conftest import free_port, scratch_postgres, temporal_address
from tests.integration.stack import ThreadedApi

pytestmark = pytest.mark.integration
GP, NORTH, WALKS, ADMIN = (
    "referrer:gp-oswestry",
    "tier_one:north-wellbeing",
    "tier_two:walking-group",
    "admin:linkway-admin",
)
# The same ten digits in other scripts: str.isdigit() is true of all of them.
FULLWIDTH = {ord("0") + i: chr(0xFF10 + i) for i in range(10)}
ARABIC_INDIC = {ord("0") + i: chr(0x0660 + i) for i in range(10)}
WEMWBS = {
    "instrument": "WEMWBS",
    "consent_ref": "c-1",
    "answers": {str(i): 3 for i in range(1, 15)},
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, dev_env, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedApi]:
    overrides: dict[str, object] = {}
    postgres = scratch_postgres() if request.param == "postgresql" else None
    if postgres is not None:
        overrides["database_url"] = postgres.__enter__()
    try:
        with ThreadedApi(
            temporal_address(dev_env),
            tmp_path_factory.mktemp(f"hostile-{request.param}"),
            free_port(),
            api_rate_per_second=10_000.0,
            api_rate_burst=10_000,
            **overrides,
        ) as running:
            yield running
    finally:
        if postgres is not None:
            postgres.__exit__(None, None, None)


@pytest.fixture
def http(api: ThreadedApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        yield client


def nhs_number() -> str:
    """A fresh valid NHS number (modulus 11), so tests never meet each other's people."""
    while True:
        number = f"{uuid.uuid4().int % 10**9:09d}"
        total = sum(int(d) * w for d, w in zip(number, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10 and nhs_number_is_valid(number + str(check)):
            return number + str(check)


def referral(nhs: str | None = None, **person: str) -> dict:
    return {
        "locality": "oswestry",
        "source": "gp",
        "referrer_org_id": "gp-1",
        "consent_to_share": True,
        "person": {"given_name": "Ada", "family_name": "Hostile", "nhs_number": nhs, **person},
    }


def refer(api: ThreadedApi, http: httpx.Client, nhs: str | None = None) -> str:
    made = http.post("/referrals", json=referral(nhs), headers=api.auth(GP, True))
    assert made.status_code == 201, made.text
    return str(made.json()["referral_id"])


def command(
    api: ThreadedApi, http: httpx.Client, rid: str, path: str, body: dict
) -> httpx.Response:
    version = http.get(f"/referrals/{rid}", headers=api.auth(NORTH)).json()["version"]
    return http.post(
        f"/referrals/{rid}/{path}",
        json={**body, "expected_version": version},
        headers=api.auth(NORTH, True),
    )


def to_assessment(api: ThreadedApi, http: httpx.Client) -> str:
    rid = refer(api, http)
    for path, body in (
        ("accept", {"link_worker_id": "lw-1"}),
        ("contact-attempts", {"outcome": "contacted"}),
    ):
        assert command(api, http, rid, path, body).status_code == 200
    return rid


def handoff(api: ThreadedApi, http: httpx.Client) -> str:
    """A fresh handoff to the walking group, requested now: its id."""
    rid = to_assessment(api, http)
    assessed = command(api, http, rid, "assessment", {"support_level": "2", "measures": [WEMWBS]})
    assert assessed.status_code == 200, assessed.text
    plan = {
        "goal_count": 1,
        "prescriptions": [{"provider_id": "walking-group", "service_id": "walks"}],
    }
    assert command(api, http, rid, "plan", plan).status_code == 200
    for _ in range(100):
        mine = http.get("/provider/handoffs", headers=api.auth(WALKS)).json()
        found = [h["handoff_id"] for h in mine if h["referral_id"] == rid]
        if found:
            return str(found[0])
        time.sleep(0.1)
    raise AssertionError("the handoff never reached the read model")


def handoff_status(api: ThreadedApi, http: httpx.Client, hid: str) -> str:
    return str(http.get(f"/provider/handoffs/{hid}", headers=api.auth(WALKS)).json()["status"])


def cursor(*key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def is_problem(answer: httpx.Response) -> bool:
    return answer.headers.get("content-type") == "application/problem+json"


# 2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("digits", [FULLWIDTH, ARABIC_INDIC], ids=["fullwidth", "arabic-indic"])
def test_an_nhs_number_in_other_digits_does_not_open_a_second_case(
    api: ThreadedApi, http: httpx.Client, digits: dict[int, str]
) -> None:
    nhs = nhs_number()
    first = refer(api, http, f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}")

    again = http.post(
        "/referrals", json=referral(nhs.translate(digits)), headers=api.auth(GP, True)
    )

    # Refused (and so no second case); were it ever accepted it must be the same case.
    assert again.status_code == 422, again.text
    assert is_problem(again)
    assert [e["field"] for e in again.json()["errors"]] == ["body.person.nhs_number"]
    assert nhs.translate(digits) not in again.text
    found = http.get(f"/referrals/{first}/status", headers=api.auth(GP))
    assert found.status_code == 200


# 3 -------------------------------------------------------------------------------------------


def test_nul_and_over_long_ids_filters_and_cursors_are_4xx_never_500(
    api: ThreadedApi, http: httpx.Client
) -> None:
    rid = refer(api, http)
    long_id = "a" * 65
    requests = [
        ("GET", "/directory/services/%00", None),  # no token at all
        ("GET", f"/directory/services/{long_id}", None),
        ("GET", "/directory/services?organization_id=%00", None),
        ("GET", "/directory/services?category=%00", None),
        ("GET", "/referrals/%00/status", GP),
        ("GET", "/referrals/%00", NORTH),
        ("GET", f"/referrals/{long_id}", NORTH),
        ("GET", "/referrals/%00/person?purpose=direct_care", NORTH),
        ("GET", "/referrals/%00/notes?purpose=direct_care", NORTH),
        ("GET", "/provider/handoffs?status=%00", WALKS),
        ("GET", "/provider/handoffs/%00", WALKS),
        ("GET", "/provider/handoffs/%00/contact", WALKS),
        ("GET", f"/referrals?cursor={cursor(chr(0))}", NORTH),
        ("GET", f"/caseload?cursor={cursor('2026-01-01T00:00:00+00:00', chr(0))}", NORTH),
        ("GET", f"/audit?cursor={cursor('²')}", ADMIN),
        ("GET", "/audit?referral_id=%00", ADMIN),
        ("GET", "/caseload?link_worker_id=%00", NORTH),
    ]
    for method, url, identity in requests:
        answer = http.request(method, url, headers=api.auth(identity) if identity else {})
        assert 400 <= answer.status_code < 500, (url, answer.status_code, answer.text)
        assert is_problem(answer), url
    posted = http.post(
        "/referrals/%00/accept",
        json={"expected_version": 1, "link_worker_id": "lw-1"},
        headers=api.auth(NORTH, True),
    )
    assert posted.status_code == 422, posted.text
    assert http.get(f"/referrals/{rid}/status", headers=api.auth(GP)).status_code == 200


def test_directory_text_with_control_characters_or_over_long_is_422(
    api: ThreadedApi, http: httpx.Client
) -> None:
    admin = api.auth(ADMIN)
    organization = {"name": "Hostile Walks"}
    service = {
        "id": "hostile-walks",
        "organization_id": "hostile",
        "name": "Walks",
        "attributes": [{"taxonomy_term": {"code": "exercise", "name": "Exercise"}}],
    }
    assert http.put("/directory/organizations/hostile", json=organization, headers=admin).is_success
    assert http.put("/directory/services/hostile-walks", json=service, headers=admin).is_success
    term = service["attributes"][0]["taxonomy_term"]  # type: ignore[index]
    bad = [
        ("/directory/organizations/hostile", {"name": "Hostile\x00Walks"}),
        ("/directory/organizations/hostile", {"name": "Hostile", "description": "a\x1bb"}),
        ("/directory/services/hostile-walks", {**service, "name": "Walks\x00"}),
        (
            "/directory/services/hostile-walks",
            {**service, "attributes": [{"taxonomy_term": {**term, "name": "x" * 100_000}}]},
        ),
        (
            "/directory/services/hostile-walks",
            {**service, "attributes": [{"taxonomy_term": {**term, "taxonomy": "t" * 100_000}}]},
        ),
        (
            "/directory/services/hostile-walks",
            {**service, "attributes": [{"taxonomy_term": {**term, "name": "Ex\x00"}}]},
        ),
        ("/directory/services/hostile-walks/capacity", {"status": "closed", "reason": "gone\x00"}),
        ("/directory/services/hostile-walks/capacity", {"status": "closed", "reason": "x" * 201}),
    ]
    for url, body in bad:
        answer = http.put(url, json=body, headers=admin)
        assert answer.status_code == 422, (url, answer.status_code, answer.text[:300])
        assert is_problem(answer)
    kept = http.get("/directory/services/hostile-walks").json()
    assert (kept["name"], kept["capacity"]["status"]) == ("Walks", "open")


def test_personal_details_and_notes_refuse_control_characters(
    api: ThreadedApi, http: httpx.Client
) -> None:
    rid = refer(api, http)
    bad_people = [
        {"given_name": "Ada\x00", "family_name": "Hostile"},
        {"given_name": "Ada", "family_name": "Hostile", "address": "1 Lane\x00"},
        {"given_name": "Ada", "family_name": "Hostile", "phone": "0770\x07"},
        {"given_name": "Ada\u2028", "family_name": "Hostile"},
    ]
    for person in bad_people:
        answer = http.put(f"/referrals/{rid}/person", json=person, headers=api.auth(NORTH))
        assert answer.status_code == 422, (person, answer.status_code)
    for note in ("called\x00back", "bell\x07", "x" * 4001):
        answer = http.post(
            f"/referrals/{rid}/notes", json={"text": note}, headers=api.auth(NORTH, True)
        )
        assert answer.status_code == 422, answer.status_code
    # Line breaks and tabs are what notes are made of: still accepted.
    fine = http.post(
        f"/referrals/{rid}/notes",
        json={"text": "Called back.\r\n\tPrefers mornings."},
        headers=api.auth(NORTH, True),
    )
    assert fine.status_code == 201, fine.text
    person = http.get(f"/referrals/{rid}/person?purpose=direct_care", headers=api.auth(NORTH))
    assert person.json()["given_name"] == "Ada"


# 4 -------------------------------------------------------------------------------------------


def test_a_chunked_body_over_the_limit_is_413_even_where_the_route_reads_no_body(
    api: ThreadedApi, http: httpx.Client
) -> None:
    hid = handoff(api, http)

    def chunks() -> Iterator[bytes]:  # a generator: httpx sends Transfer-Encoding: chunked
        for _ in range(64):
            yield b" " * 16_384  # 1 MiB in all

    answer = http.post(
        f"/provider/handoffs/{hid}/accept", content=chunks(), headers=api.auth(WALKS)
    )

    assert answer.status_code == 413, answer.text
    assert is_problem(answer)
    assert handoff_status(api, http, hid) == "requested"


# 5 -------------------------------------------------------------------------------------------


def test_provider_bodies_refuse_unknown_fields(api: ThreadedApi, http: httpx.Client) -> None:
    hid = handoff(api, http)
    today = datetime.now(UTC).date().isoformat()
    for path, body in (
        ("reject", {"reason_code": "no_capacity", "reason_text": "we are full"}),
        ("waitlist", {"waitlist_band": "under_1_month", "until": "2030-01-01"}),
        ("attendance", {"session_date": today, "status": "attended", "note": "x"}),
    ):
        answer = http.post(f"/provider/handoffs/{hid}/{path}", json=body, headers=api.auth(WALKS))
        assert answer.status_code == 422, (path, answer.status_code, answer.text)
        assert is_problem(answer)
    assert handoff_status(api, http, hid) == "requested"


def test_attendance_outside_a_plausible_window_is_refused_per_row(
    api: ThreadedApi, http: httpx.Client
) -> None:
    hid = handoff(api, http)
    today = datetime.now(UTC).date()
    for when in (date(9999, 12, 31), today + timedelta(days=3), date(2000, 1, 1)):
        single = http.post(
            f"/provider/handoffs/{hid}/attendance",
            json={"session_date": when.isoformat(), "status": "attended"},
            headers=api.auth(WALKS),
        )
        assert single.status_code == 422, (when, single.status_code, single.text)
        assert "session_date" in single.json()["detail"]
    rows = [
        f"{hid},{today.isoformat()},attended",
        f"{hid},9999-12-31,attended",
        f"{hid},{(today - timedelta(days=30)).isoformat()},attended",
    ]
    upload = http.post(
        "/provider/attendance",
        content=("handoff_id,session_date,status\n" + "\n".join(rows) + "\n").encode(),
        headers={**api.auth(WALKS), "Content-Type": "text/csv"},
    )
    report = upload.json()
    assert upload.status_code == 200, upload.text
    assert [r["line"] for r in report["rows"]] == [2]
    assert [e["line"] for e in report["errors"]] == [3, 4]
    assert all("session_date" in e["error"] for e in report["errors"])


# 6 -------------------------------------------------------------------------------------------


def test_error_bodies_never_repeat_what_was_sent(api: ThreadedApi, http: httpx.Client) -> None:
    nhs = nhs_number()
    missing = http.get(f"/referrals/{nhs}/status", headers=api.auth(GP))
    assert missing.status_code == 404
    assert missing.json()["instance"] == "/referrals/{referral_id}/status"
    assert nhs not in missing.text

    rid = to_assessment(api, http)
    secret = "Evangeline"
    refused = [
        command(api, http, rid, "assessment", {"support_level": secret, "measures": []}),
        command(
            api,
            http,
            rid,
            "deadlines",
            {"deadline": secret, "due_at": "2030-01-01T00:00:00Z"},
        ),
        command(
            api,
            http,
            rid,
            "assessment",
            {"support_level": "2", "measures": [{**WEMWBS, "instrument": secret}]},
        ),
    ]
    for answer in refused:
        assert 400 <= answer.status_code < 500, answer.text
        assert secret not in answer.text, answer.text
        assert "{referral_id}" in answer.json()["instance"]


# 7 -------------------------------------------------------------------------------------------


def test_an_unexpected_error_logs_a_correlation_id_and_its_type_only(
    api: ThreadedApi, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn's own loggers do not propagate to the root logger that caplog listens on.
    uvicorn_log = logging.getLogger("uvicorn")
    uvicorn_log.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    secret = "needle-" + uuid.uuid4().hex[:8]
    engine = get_engine(api.settings)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE referral_referrers RENAME TO referral_referrers_away"))
    try:
        answer = http.get(f"/referrals/{secret}/status", headers=api.auth(GP))
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE referral_referrers_away RENAME TO referral_referrers"))
        uvicorn_log.removeHandler(caplog.handler)

    assert answer.status_code == 500
    assert is_problem(answer) and secret not in answer.text
    correlation = answer.json()["correlation_id"]
    # The server's records: the test's own HTTP client logs the URL it asked for.
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = [r for r in server if correlation in r.getMessage()]
    assert logged, [r.getMessage() for r in server]
    everything = "\n".join(r.getMessage() + repr(r.exc_info) + repr(r.exc_text) for r in server)
    assert secret not in everything
    assert "Traceback" not in everything and not any(r.exc_info for r in server)
    assert "ProgrammingError" in logged[0].getMessage() or "OperationalError" in (
        logged[0].getMessage()
    )


# 8 -------------------------------------------------------------------------------------------


def test_personal_data_writes_answer_503_when_the_audit_log_is_down(
    api: ThreadedApi, http: httpx.Client
) -> None:
    rid = refer(api, http)
    engine = get_engine(api.settings)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_log RENAME TO audit_log_offline"))
    try:
        person = http.put(
            f"/referrals/{rid}/person",
            json={"given_name": "Changed", "family_name": "Hostile"},
            headers=api.auth(NORTH),
        )
        note = http.post(
            f"/referrals/{rid}/notes", json={"text": "a note"}, headers=api.auth(NORTH, True)
        )
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log_offline RENAME TO audit_log"))

    for answer in (person, note):
        assert (answer.status_code, answer.json()["title"]) == (503, "Audit unavailable")
    stored = http.get(f"/referrals/{rid}/person?purpose=direct_care", headers=api.auth(NORTH))
    assert stored.json()["given_name"] == "Ada"  # nothing was written
    notes = http.get(f"/referrals/{rid}/notes?purpose=direct_care", headers=api.auth(NORTH))
    assert notes.json()["items"] == []


# 9 -------------------------------------------------------------------------------------------


def test_a_personal_data_read_must_state_its_purpose(api: ThreadedApi, http: httpx.Client) -> None:
    rid = refer(api, http)
    for resource in ("person", "notes"):
        answer = http.get(f"/referrals/{rid}/{resource}", headers=api.auth(NORTH))
        assert answer.status_code == 400, answer.text
        assert is_problem(answer)
        for purpose in ("direct_care", "safeguarding", "contact", "subject_access_request"):
            assert purpose in answer.json()["detail"]
    trail = http.get(f"/audit?referral_id={rid}&action=read", headers=api.auth(ADMIN)).json()
    assert trail["items"] == []  # a refused read is not a read
