"""The referrer hears back, on the real API, worker and database: a referral declined at
triage and one taken to completion each give the referring GP practice a status view
with the reason (coded, in words) and the message back to the GP record, a FHIR Bundle
that validates with the FHIR library, carries the SNOMED CT codes and, of the person,
only the NHS number. Another practice, and any other role, gets nothing."""

from __future__ import annotations

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlmodel import Session, col, select

from api.personal_data import AuditRecord
from infra.db import get_engine
from messaging.outbox import OutboxRow
from tests.integration.stack import ThreadedApi, refer, walk

pytestmark = pytest.mark.integration

GP = "referrer:gp-oswestry"
NORTH = "tier_one:north-wellbeing"
SNOMED = "http://snomed.info/sct"


async def refer_as_gp(http: httpx.AsyncClient, api: ThreadedApi, nhs: str, family: str) -> str:
    person = {"given_name": "Hearing", "family_name": family, "nhs_number": nhs}
    return await refer(http, api, GP, person, referrer_org_id="gp-oswestry")


def codes(bundle: Bundle) -> set[str]:
    return {
        coding.code
        for entry in bundle.entry or []
        for concept in _concepts(entry.resource)
        for coding in concept.coding or []
        if coding.system == SNOMED
    }


def _concepts(resource: object) -> list:
    found = []
    for name in ("code", "statusReason", "businessStatus"):
        value = getattr(resource, name, None)
        if value is not None and hasattr(value, "coding"):
            found.append(value)
    return found


async def test_a_declined_referral_tells_the_gp_why_and_files_as_fhir(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    rid = await refer_as_gp(http, api, "9434765919", "Declined")
    await walk(http, api, NORTH, rid, [("decline", {"reason_code": "out_of_area"})])

    shown = await http.get(f"/referrals/{rid}/status", headers=api.auth(GP))
    assert shown.status_code == 200, shown.text
    status = shown.json()
    assert status["status"] == "declined"
    assert status["reason"] == {
        "code": "out_of_area",
        "display": "The person lives outside the area the service covers",
    }
    assert [m["status"] for m in status["milestones"]] == ["received", "declined"]
    assert status["milestones"][1]["snomed_code"] == "871711000000103"
    listed = (await http.get("/referrals", headers=api.auth(GP))).json()["items"]
    assert next(i for i in listed if i["referral_id"] == rid)["reason"]["code"] == "out_of_area"

    answer = await http.get(f"/referrals/{rid}/message-back", headers=api.auth(GP))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate_json(answer.text)  # the library's own validation
    assert bundle.type == "message"
    assert bundle.entry[0].resource.get_resource_type() == "MessageHeader"
    assert {"871731000000106", "871711000000103"} <= codes(bundle)
    task = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Task")
    assert task.status == "rejected"
    assert [c.code for c in task.statusReason.coding] == ["871711000000103", "out_of_area"]
    patient = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Patient")
    assert [i.value for i in patient.identifier] == ["9434765919"]
    assert patient.name is None and patient.birthDate is None
    assert "Hearing" not in answer.text and "Declined" not in answer.text

    # Only the practice that referred, and only the referrer role: the same 404 / 403.
    other = await http.get(f"/referrals/{rid}/message-back", headers=api.auth("referrer:gp-ludlow"))
    worker = await http.get(f"/referrals/{rid}/message-back", headers=api.auth(NORTH))
    assert (other.status_code, worker.status_code) == (404, 403)
    with Session(get_engine(api.settings)) as session:
        audited = session.exec(
            select(AuditRecord).where(
                col(AuditRecord.referral_id) == rid, AuditRecord.purpose == "message_back"
            )
        ).all()
        payloads = session.exec(select(OutboxRow.payload).where(OutboxRow.key == rid)).all()
    assert [(a.partner_id, a.action) for a in audited] == [("gp-oswestry", "read")]
    assert not any("9434765919" in p for p in payloads)  # never in an event


async def test_a_completed_referral_sends_its_summary_back_to_the_gp(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    rid = await refer_as_gp(http, api, "9434765870", "Completed")
    await walk(
        http,
        api,
        NORTH,
        rid,
        [
            ("accept", {}),
            ("contact-attempts", {"outcome": "contacted"}),
            ("assessment", {"support_level": "2"}),
            ("plan", {"goal_count": 2, "prescriptions": []}),
            ("review", {"decision": "dormant", "early_reason_code": "goals_met"}),
            (
                "completion-report",
                {
                    "goals": [{"goal": 1, "achieved": "achieved"}],
                    "ongoing_plan": ["self_managing"],
                },
            ),
        ],
    )

    status = (await http.get(f"/referrals/{rid}/status", headers=api.auth(GP))).json()
    assert status["status"] == "completed"
    assert [m["status"] for m in status["milestones"]] == [
        "received",
        "accepted",
        "first_contact",
        "assessed",
        "plan_agreed",
        "reviewed",
        "ended",
        "completed",
    ]
    assert status["summary"]["goals_achieved"] == 1 and status["summary"]["goal_count"] == 2
    assert status["summary"]["ongoing_plan"] == ["self_managing"]

    answer = await http.get(f"/referrals/{rid}/message-back", headers=api.auth(GP))
    bundle = Bundle.model_validate_json(answer.text)
    assert "871731000000106" in codes(bundle) and "871711000000103" not in codes(bundle)
    header = bundle.entry[0].resource
    assert header.eventCoding.code == "completed"
    task = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Task")
    assert task.status == "completed"
    observations = [
        e.resource for e in bundle.entry if e.resource.get_resource_type() == "Observation"
    ]
    assert len(observations) == 9  # eight milestones and the summary
