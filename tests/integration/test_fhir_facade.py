"""The FHIR facade on the real API, worker and database: a referral made as a FHIR
ServiceRequest is the same referral ``POST /referrals`` makes (same workflow, same
event, same Idempotency-Key); a Tier Two provider moves its Task accepted -> in-progress
-> completed and the workflow state shows it; another provider's Task is 404; a bad
resource is an OperationOutcome naming the element."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from sqlmodel import Session, select

from infra.db import get_engine
from messaging.outbox import OutboxRow
from tests.integration.provider_harness import eventually
from tests.integration.stack import ThreadedApi

pytestmark = pytest.mark.integration

GP = "referrer:gp-oswestry"
NORTH = "tier_one:north-wellbeing"
WALKS = "tier_two:walking-group"
FHIR = {"Content-Type": "application/fhir+json"}
PERSON = {"given_name": "Fhir", "family_name": "Door", "nhs_number": "9434765889"}


def service_request(person: dict[str, str], **changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "871731000000106"}]},
        "contained": [
            {
                "resourceType": "Patient",
                "id": "p",
                "identifier": [
                    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": person["nhs_number"]}
                ],
                "name": [{"family": person["family_name"], "given": [person["given_name"]]}],
            }
        ],
        "subject": {"reference": "#p"},
        "locationCode": [{"coding": [{"system": "urn:linkway:locality", "code": "oswestry"}]}],
        "category": [
            {"coding": [{"system": "urn:linkway:codesystem:referral-source", "code": "gp"}]}
        ],
        "requester": {"identifier": {"system": "urn:linkway:partner-id", "value": "gp-1"}},
        "extension": [{"url": "urn:linkway:extension:consent-to-share", "valueBoolean": True}],
    }
    resource.update(changes)
    return resource


def native(person: dict[str, str]) -> dict[str, Any]:
    return {
        "locality": "oswestry",
        "source": "gp",
        "referrer_org_id": "gp-1",
        "reason_codes": [],
        "consent_to_share": True,
        "person": person,
    }


def received(api: ThreadedApi, rid: str) -> dict[str, Any]:
    with Session(get_engine(api.settings)) as session:
        payload = session.exec(
            select(OutboxRow.payload).where(
                OutboxRow.key == rid, OutboxRow.type == "linkway.referral.received.v1"
            )
        ).one()
    data = json.loads(payload)["data"]
    return {k: v for k, v in data.items() if k not in ("referral_id", "occurred_at")}


async def test_a_service_request_is_the_same_referral_as_post_referrals(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    made = await http.post(
        "/fhir/ServiceRequest",
        content=json.dumps(service_request(PERSON)),
        headers={**api.auth(GP, True), **FHIR},
    )
    assert made.status_code == 201, made.text
    assert made.headers["content-type"].startswith("application/fhir+json")
    sr = ServiceRequest.model_validate_json(made.text)
    assert made.headers["location"] == f"/fhir/ServiceRequest/{sr.id}"
    assert "Door" not in made.text and "9434765889" not in made.text  # pseudonymous
    other = {**PERSON, "nhs_number": "9434765897", "family_name": "Native"}
    plain = await http.post("/referrals", json=native(other), headers=api.auth(GP, True))
    assert plain.status_code == 201, plain.text
    assert received(api, str(sr.id)) == received(api, plain.json()["referral_id"])

    # One Idempotency-Key, both doors: the first answer, no second referral.
    key = "fhir-and-native-1"
    person = {**PERSON, "nhs_number": "9434765900", "family_name": "Twice"}
    first = await http.post("/referrals", json=native(person), headers=api.auth(GP, key))
    again = await http.post(
        "/fhir/ServiceRequest",
        content=json.dumps(service_request(person)),
        headers={**api.auth(GP, key), **FHIR},
    )
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert ServiceRequest.model_validate_json(again.text).id == first.json()["referral_id"]

    read = await http.get(f"/fhir/ServiceRequest/{sr.id}", headers=api.auth(NORTH))
    assert ServiceRequest.model_validate_json(read.text).status == "active"

    async def search(identity: str, query: str) -> list[str]:
        found = await http.get(f"/fhir/ServiceRequest?{query}", headers=api.auth(identity))
        assert found.status_code == 200, found.text
        return [str(e.resource.id) for e in Bundle.model_validate_json(found.text).entry or []]

    assert await search(GP, f"identifier=urn:linkway:referral-id|{sr.id}") == [sr.id]
    assert await search("referrer:gp-ludlow", f"identifier={sr.id}") == []
    assert sr.id in await search(NORTH, "status=active&_count=200")
    assert sr.id not in await search(NORTH, "status=revoked")
    theirs = await http.get(f"/fhir/ServiceRequest/{sr.id}", headers=api.auth("referrer:gp-ludlow"))
    assert theirs.status_code == 404
    assert OperationOutcome.model_validate_json(theirs.text).issue[0].code == "not-found"


async def test_a_bad_resource_gets_an_operation_outcome_naming_the_element(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    no_place = service_request(PERSON, locationCode=[])
    bad_date = service_request(PERSON, authoredOn="yesterday")
    answers = [
        await http.post(
            "/fhir/ServiceRequest", content=json.dumps(body), headers={**api.auth(GP, True), **FHIR}
        )
        for body in (no_place, bad_date)
    ]
    assert [a.status_code for a in answers] == [422, 422]
    expressions = [
        OperationOutcome.model_validate_json(a.text).issue[0].expression for a in answers
    ]
    assert expressions == [["ServiceRequest.locationCode"], ["ServiceRequest.authoredOn"]]
    assert all(a.headers["content-type"].startswith("application/fhir+json") for a in answers)
    assert "yesterday" not in answers[1].text
    statement = await http.get("/fhir/metadata")
    assert CapabilityStatement.model_validate_json(statement.text).fhirVersion == "4.0.1"


async def test_a_provider_moves_its_task_to_completed_over_fhir(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    person = {**PERSON, "nhs_number": "9434765870", "family_name": "Tasked"}
    rid = (await http.post("/referrals", json=native(person), headers=api.auth(GP, True))).json()[
        "referral_id"
    ]
    plan = {
        "goal_count": 1,
        "prescriptions": [{"provider_id": "walking-group", "service_id": "walks"}],
    }
    for version, (path, step) in enumerate(
        [
            ("accept", {}),
            ("contact-attempts", {"outcome": "contacted"}),
            ("assessment", {"support_level": "2"}),
            ("plan", plan),
        ],
        start=1,
    ):
        done = await http.post(
            f"/referrals/{rid}/{path}",
            json={**step, "expected_version": version},
            headers=api.auth(NORTH, True),
        )
        assert done.status_code == 200, done.text

    async def tasks() -> list[Task]:
        found = await http.get(
            "/fhir/Task?owner=Organization/walking-group", headers=api.auth(WALKS)
        )
        bundle = Bundle.model_validate_json(found.text)
        return [
            e.resource for e in bundle.entry or [] if e.resource.for_fhir.identifier.value == rid
        ]

    async def status_is(hid: str, status: str) -> bool:
        read = await http.get(f"/fhir/Task/{hid}", headers=api.auth(WALKS))
        return Task.model_validate_json(read.text).status == status

    await eventually(lambda: _nonempty(tasks()))
    hid = str((await tasks())[0].id)
    assert await status_is(hid, "requested")

    accepted = await http.put(
        f"/fhir/Task/{hid}",
        content=json.dumps({"resourceType": "Task", "status": "accepted", "intent": "order"}),
        headers={**api.auth(WALKS), **FHIR},
    )
    assert accepted.status_code == 202, accepted.text
    await eventually(lambda: status_is(hid, "accepted"))
    started = await http.patch(
        f"/fhir/Task/{hid}",
        content=json.dumps({"status": "in-progress"}),
        headers={**api.auth(WALKS), "Content-Type": "application/merge-patch+json"},
    )
    assert started.status_code == 202, started.text
    await eventually(lambda: status_is(hid, "in-progress"))
    # Attendance after the start counts, and leaves the Task in progress.
    today = __import__("datetime").date.today().isoformat()
    attended = await http.post(
        f"/provider/handoffs/{hid}/attendance",
        json={"session_date": today, "status": "attended"},
        headers=api.auth(WALKS),
    )
    assert attended.status_code == 202, attended.text
    patch = {
        "status": "completed",
        "output": [
            {
                "type": {"text": "delivered"},
                "valueCodeableConcept": {
                    "coding": [
                        {"system": "urn:linkway:codesystem:delivered", "code": "course_completed"}
                    ]
                },
            }
        ],
    }
    completed = await http.patch(
        f"/fhir/Task/{hid}",
        content=json.dumps(patch),
        headers={**api.auth(WALKS), "Content-Type": "application/merge-patch+json"},
    )
    assert completed.status_code == 202, completed.text
    await eventually(lambda: status_is(hid, "completed"))
    shown = (await http.get(f"/referrals/{rid}", headers=api.auth(NORTH))).json()
    (handoff,) = [h for h in shown["handoffs"] if h["handoff_id"] == hid]
    assert (handoff["status"], handoff["delivered_code"]) == ("completed", "course_completed")
    done = Task.model_validate_json(
        (await http.get(f"/fhir/Task/{hid}", headers=api.auth(WALKS))).text
    )
    assert [c.code for c in done.output[0].valueCodeableConcept.coding] == ["course_completed"]

    # Searching by when a Task last changed finds it from its completion on, not after.
    changed = done.lastModified.isoformat().replace("+00:00", "Z")
    later = f"ge{(done.lastModified + timedelta(seconds=1)).isoformat().replace('+00:00', 'Z')}"
    for since, expected in ((f"ge{changed}", [hid]), (later, [])):
        found = await http.get(
            "/fhir/Task",
            params={"_lastUpdated": since, "status": "completed"},
            headers=api.auth(WALKS),
        )
        assert found.status_code == 200, found.text
        assert [
            str(e.resource.id) for e in Bundle.model_validate_json(found.text).entry or []
        ] == expected

    # Another provider: the Task is not there, and searching for it finds nothing.
    theirs = await http.get(f"/fhir/Task/{hid}", headers=api.auth("tier_two:befriending"))
    assert theirs.status_code == 404
    assert OperationOutcome.model_validate_json(theirs.text).issue[0].code == "not-found"
    spying = await http.get(
        "/fhir/Task?owner=Organization/walking-group", headers=api.auth("tier_two:befriending")
    )
    assert Bundle.model_validate_json(spying.text).total == 0
    rejected = await http.patch(
        f"/fhir/Task/{hid}",
        content=json.dumps({"status": "rejected"}),
        headers={**api.auth(WALKS), "Content-Type": "application/merge-patch+json"},
    )
    assert rejected.status_code == 422
    assert OperationOutcome.model_validate_json(rejected.text).issue[0].expression == [
        "Task.statusReason"
    ]


async def _nonempty(found: Any) -> bool:
    return bool(await found)
