"""Personal data stays in the personal-data store: one person through the whole pathway
over HTTP (with their details updated, notes written and read, a re-referral, and a
handful of refused requests), then a scan of everything Linkway emitted finds none of
their name, NHS number or date of birth: Kafka topics, Temporal histories (payloads
decoded), logs at DEBUG (also as the JSON lines Linkway writes), error bodies, every
database table (the store itself is ciphertext), and the telemetry: every span's name,
attributes and events, and every metric's attributes. Reads and writes show in the
admin's audit log; with the audit log unwritable, reads fail."""

from __future__ import annotations

import asyncio
import io
import logging
import time
import uuid

import httpx
import pytest
from kafka import KafkaConsumer
from sqlalchemy import inspect, text

from infra import temporal
from infra.db import get_engine
from infra.telemetry import JsonFormatter
from messaging.reader import read_all as read_topic
from tests.conftest import Telemetry, free_port, temporal_address
from tests.integration.stack import running_stack
from workflows import referral_workflow_id

pytestmark = pytest.mark.integration

PERSON = {
    "given_name": "Evangeline",
    "family_name": "Thistlewood",
    "nhs_number": "401 023 2137",
    "date_of_birth": "1947-03-08",
    "phone": "07700 900461",
    "email": "evangeline.t@example.org",
    "address": "12 Larkspur Row, Oswestry",
    "notes": "Prefers mornings; Evangeline's daughter helps",
}
SECRETS = [
    "Evangeline",
    "evangeline",
    "Thistlewood",
    "thistlewood",
    "4010232137",
    "401 023 2137",
    "1947-03-08",
    "08/03/1947",
    "Larkspur",
    "Rosalind",
    "Quartermaine",
    "9990001112",
    # Equality monitoring (special-category data): the answers, the write-ins and the
    # postcode the IMD decile is derived from.
    "asian_bangladeshi",
    "different_from_sex_at_birth",
    "Zephyrine",
    "Wrenfield",
    "SY11 7AA",
    "SY117AA",
    "mental_health_condition",
]
# Category codes are public (a 422 lists the allowed ones); only the data must not hold them.
EQUALITY_CODES = {"asian_bangladeshi", "different_from_sex_at_birth", "mental_health_condition"}
EQUALITY = {
    "age_band": "75-84",
    "sex": "female",
    "gender_identity": "different_from_sex_at_birth",
    "gender_identity_write_in": "Wrenfield in my own words",
    "ethnicity": "asian_bangladeshi",
    "ethnicity_write_in": "Zephyrine heritage",
    "disability": "yes",
    "carer": "yes",
    "long_term_conditions": ["mental_health_condition", "diabetes"],
    "postcode": "SY11 7AA",
}
GP, NORTH = "referrer:gp-oswestry", "tier_one:north-wellbeing"
WEMWBS = {
    "instrument": "WEMWBS",
    "consent_ref": "c-1",
    "answers": {str(i): 2 for i in range(1, 15)},
}


def leaks(blob: str | bytes) -> list[str]:
    text_ = blob.decode(errors="replace") if isinstance(blob, bytes) else blob
    return [secret for secret in SECRETS if secret in text_]


async def test_nothing_linkway_emits_carries_personal_data(
    telemetry: Telemetry, dev_env, broker, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry.spans.clear()
    # The JSON lines Linkway writes, formatted as each record is emitted (the trace and
    # span ids are those current at that moment).
    json_lines = io.StringIO()
    json_handler = logging.StreamHandler(json_lines)
    json_handler.setFormatter(JsonFormatter())
    json_handler.addFilter(lambda r: r.name != "httpx")  # the test client's own requests
    logging.getLogger().addHandler(json_handler)
    # Linkway's own loggers at DEBUG, every library's at INFO (their DEBUG is wire dumps).
    caplog.set_level(logging.INFO)
    for name in ("linkway", "api", "events", "infra", "workers", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[httpx.Response] = []
    async with running_stack(temporal_address(dev_env), broker, tmp_path, free_port()) as stack:
        http = stack.http

        async def send(
            method: str, url: str, identity: str, body: object = None, **kw
        ) -> httpx.Response:
            key = method in ("POST",)
            answer = await http.request(
                method, url, json=body, headers=stack.auth(identity, key), **kw
            )
            if answer.status_code >= 400:
                errors.append(answer)
            return answer

        async def command(rid: str, path: str, body: dict) -> None:
            seen = await send("GET", f"/referrals/{rid}", NORTH)
            done = await send(
                "POST",
                f"/referrals/{rid}/{path}",
                NORTH,
                {**body, "expected_version": seen.json()["version"]},
            )
            assert done.status_code == 200, done.text

        referral = {
            "locality": "oswestry",
            "source": "gp",
            "referrer_org_id": "gp-1",
            "reason_codes": ["loneliness"],
            "consent_to_share": True,
            "person": PERSON,
        }
        made = await send("POST", "/referrals", GP, referral)
        assert made.status_code == 201, made.text
        rid = made.json()["referral_id"]
        await command(rid, "accept", {"link_worker_id": "lw-1"})
        await command(rid, "contact-attempts", {"outcome": "contacted"})
        await command(rid, "assessment", {"support_level": "2", "measures": [WEMWBS]})
        await command(
            rid,
            "plan",
            {
                "goal_count": 1,
                "prescriptions": [{"provider_id": "walking-group", "service_id": "walks"}],
            },
        )

        updated = {**PERSON, "what_matters_to_me": "Seeing Rosalind Quartermaine at the allotment"}
        assert (await send("PUT", f"/referrals/{rid}/person", NORTH, updated)).status_code == 204
        note = await send(
            "POST", f"/referrals/{rid}/notes", NORTH, {"text": "Evangeline Thistlewood called back"}
        )
        assert note.status_code == 201
        person = await send(
            "GET", f"/referrals/{rid}/person", NORTH, params={"purpose": "safeguarding"}
        )
        assert person.json()["what_matters_to_me"].startswith("Seeing Rosalind")
        assert person.json()["nhs_number"] == "4010232137"
        notes = await send(
            "GET", f"/referrals/{rid}/notes", NORTH, params={"purpose": "direct_care"}
        )
        assert [n["text"] for n in notes.json()["items"]] == ["Evangeline Thistlewood called back"]
        # Equality monitoring: written, read back with the derived IMD decile, and
        # reported only as a suppressed aggregate.
        equality_url = f"/referrals/{rid}/equality"
        assert (await send("PUT", equality_url, NORTH, EQUALITY)).status_code == 204
        answers = await send("GET", equality_url, NORTH, params={"purpose": "direct_care"})
        assert answers.json()["ethnicity"] == "asian_bangladeshi"
        assert answers.json()["imd_decile"] == 1  # the packaged sample's SY11 7AA
        counted = await send("GET", "/equality/report", "contract_manager:commissioner")
        assert counted.status_code == 200 and counted.json()["people"] == "<5"
        # The categories are the report's rows; with one person, every count is hidden.
        cells = [
            v for q in counted.json()["questions"] for v in [*q["counts"].values(), q["total"]]
        ]
        assert set(cells) == {"<5"}
        bad = {**EQUALITY, "ethnicity": "Zephyrine"}
        assert (await send("PUT", equality_url, NORTH, bad)).status_code == 422

        # The person comes back: the same case, a new episode, found by NHS number.
        await command(rid, "end-episode", {"reason_code": "withdrawn"})
        again = await send("POST", "/referrals", GP, referral)
        assert (again.status_code, again.json()["referral_id"]) == (200, rid), again.text

        # Refused requests carrying personal data: none may echo it.
        bad_nhs = {**referral, "person": {**PERSON, "nhs_number": "9990001112"}}
        assert (await send("POST", "/referrals", GP, bad_nhs)).status_code == 422
        bad_code = {**referral, "reason_codes": ["Evangeline Thistlewood"]}
        assert (await send("POST", "/referrals", GP, bad_code)).status_code == 422
        bad_dob = {**referral, "person": {**PERSON, "date_of_birth": "Evangeline"}}
        assert (await send("POST", "/referrals", GP, bad_dob)).status_code == 422
        clash = stack.auth(GP, key="reused")
        await http.post("/referrals", json=referral, headers=clash)
        reused = await http.post("/referrals", json=bad_code | {"reason_codes": []}, headers=clash)
        errors.append(reused)
        bad_note = await send(
            "POST", f"/referrals/{rid}/notes", NORTH, {"text": "", "x": "Thistlewood"}
        )
        assert bad_note.status_code == 422
        assert (await send("GET", f"/referrals/{rid}/person", GP)).status_code == 403
        assert (
            await send(
                "GET",
                f"/referrals/{uuid.uuid4().hex}/person",
                NORTH,
                params={"purpose": "direct_care"},
            )
        ).status_code == 404
        # Personal data in a query string or a path: refused, and kept out of the spans.
        nosy = await send(
            "GET",
            f"/referrals/{rid}/person",
            NORTH,
            params={"purpose": "direct_care", "nhs_number": "4010232137", "q": "Evangeline"},
        )
        assert nosy.status_code == 422
        assert (await send("GET", "/referrals/Thistlewood/person", NORTH)).status_code in (
            400,
            404,
            422,
        )
        assert len(errors) >= 9

        # The admin's audit log: who read or wrote what, for whom and why.
        trail = (
            await send("GET", "/audit", "admin:linkway-admin", params={"referral_id": rid})
        ).json()
        seen = {(e["action"], e["resource"], e["purpose"]) for e in trail["items"]}
        assert {
            ("write", "person", "referral"),
            ("write", "person", "update_details"),
            ("write", "notes", "case_note"),
            ("read", "person", "safeguarding"),
            ("read", "notes", "direct_care"),
            ("match", "person", "referral"),
            ("write", "equality", "equality_monitoring"),
            ("read", "equality", "direct_care"),
        } <= seen
        assert all(e["actor_id"].startswith("demo-") for e in trail["items"])

        # Everything reaches Kafka before the scan.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with get_engine(stack.settings).connect() as conn:
                if not conn.execute(
                    text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                ).scalar():
                    break
            await asyncio.sleep(0.2)

        # No audit, no read.
        with get_engine(stack.settings).begin() as conn:
            conn.execute(text("ALTER TABLE audit_log RENAME TO audit_log_offline"))
        blocked = await send(
            "GET", f"/referrals/{rid}/person", NORTH, params={"purpose": "direct_care"}
        )
        assert (blocked.status_code, blocked.json()["title"]) == (503, "Audit unavailable")
        with get_engine(stack.settings).begin() as conn:
            conn.execute(text("ALTER TABLE audit_log_offline RENAME TO audit_log"))

        client = await temporal.connect(stack.settings)
        history = await client.get_workflow_handle(referral_workflow_id(rid)).fetch_history()
        tables = {}
        engine = get_engine(stack.settings)
        with engine.connect() as conn:
            for table in inspect(engine).get_table_names():
                tables[table] = repr(conn.execute(text(f'SELECT * FROM "{table}"')).fetchall())

    for answer in errors:
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        assert not set(leaks(answer.text)) - EQUALITY_CODES, answer.text
        assert "Traceback" not in answer.text
    # Protobuf carries payload bytes as they are, so personal data would show in plain.
    raw_history = b"".join(event.SerializeToString() for event in history.events)
    assert len(history.events) > 10 and not leaks(raw_history)
    # httpx logs this test's own requests (the client's side, not Linkway's).
    records = [r for r in caplog.records if r.name != "httpx"]
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in records)
    assert records and not leaks(logged), [
        (r.name, r.getMessage()) for r in records if leaks(r.getMessage())
    ]
    consumer = KafkaConsumer(bootstrap_servers=broker)
    topics = sorted(t for t in consumer.topics() if t.startswith("linkway."))
    consumer.close()
    published = [
        value for t in topics for _, value in await asyncio.to_thread(read_topic, broker, t)
    ]
    assert any(rid.encode() in value for value in published)
    assert not [leaks(value) for value in published if leaks(value)]
    for table, rows in tables.items():
        assert not leaks(rows), (table, [r for r in rows.split("), (") if leaks(r)])

    # Telemetry: every span (name, attributes, events), every metric data point's
    # attributes, and the logs as the JSON lines Linkway writes.
    spans = telemetry.spans.get_finished_spans()
    assert len(spans) > 100
    for span in spans:
        seen_in_span = repr(
            (
                span.name,
                dict(span.attributes or {}),
                [dict(e.attributes or {}) for e in span.events],
            )
        )
        assert not leaks(seen_in_span), (span.name, leaks(seen_in_span))
    data = telemetry.metrics.get_metrics_data()
    attributes = [
        (metric.name, dict(point.attributes or {}))
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]
    assert any(name == "linkway.commands" for name, _ in attributes)
    assert not [a for a in attributes if leaks(repr(a))]
    logging.getLogger().removeHandler(json_handler)
    json_logs = json_lines.getvalue()
    assert json_logs and not leaks(json_logs), leaks(json_logs)
