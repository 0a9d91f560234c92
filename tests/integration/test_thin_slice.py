"""One referral through every layer: HTTP -> workflow -> read model + outbox -> relay ->
Kafka, on the real dev server and the real broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from events import topics
from messaging.reader import read_all as read_topic
from tests.conftest import free_port, temporal_address
from tests.integration.stack import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

PERSON = {
    "given_name": "Testname",
    "family_name": "Testfamily",
    "nhs_number": "9434765919",
    "date_of_birth": "1950-02-03",
    "phone": "07700 900123",
}


def referral_body(nhs_number: str = "9434765919") -> dict:
    return {
        "locality": "oswestry",
        "source": "gp",
        "referrer_org_id": "gp-practice-1",
        "reason_codes": ["loneliness"],
        "consent_to_share": True,
        "person": {**PERSON, "nhs_number": nhs_number},
    }


async def events_for(bootstrap: str, referral_id: str, want: int, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while True:
        found = [
            json.loads(value)
            for key, value in await asyncio.to_thread(read_topic, bootstrap, topics.REFERRALS)
            if key == referral_id.encode()
        ]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_posted_referral_reaches_kafka_once_even_when_posted_twice(
    dev_env, broker, tmp_path, database_url
):
    async with running_stack(
        temporal_address(dev_env), broker, tmp_path, free_port(), database_url=database_url
    ) as stack:
        gp = stack.auth("referrer:gp-oswestry", key=uuid.uuid4().hex)
        first = await stack.http.post("/referrals", json=referral_body(), headers=gp)
        again = await stack.http.post("/referrals", json=referral_body(), headers=gp)
        assert first.status_code == 201, first.text
        assert again.status_code == 201 and again.json() == first.json()
        referral_id = first.json()["referral_id"]

        status = await stack.http.get(
            f"/referrals/{referral_id}/status", headers=stack.auth("referrer:gp-oswestry")
        )
        assert status.status_code == 200
        assert (status.json()["stage"], status.json()["episode"]) == ("triage", 1)

        events = await events_for(broker, referral_id, want=1)
        await asyncio.sleep(1)  # give a duplicate time to show up, if there were one
        events = await events_for(broker, referral_id, want=2, timeout=1)

    assert [e["type"] for e in events] == ["linkway.referral.received.v1"]
    event = events[0]
    assert event["subject"] == referral_id and event["specversion"] == "1.0"
    assert event["data"]["partner_id"] == "north-wellbeing"
    raw = json.dumps(event)
    for value in PERSON.values():
        assert value not in raw, "personal data leaked into an event"


async def test_same_idempotency_key_with_other_body_is_rejected(
    dev_env, broker, tmp_path, database_url
):
    async with running_stack(
        temporal_address(dev_env), broker, tmp_path, free_port(), database_url=database_url
    ) as stack:
        gp = stack.auth("referrer:gp-oswestry", key=uuid.uuid4().hex)
        ok = await stack.http.post("/referrals", json=referral_body("4010232137"), headers=gp)
        other = referral_body("4010232137") | {"reason_codes": ["debt"]}
        clash = await stack.http.post("/referrals", json=other, headers=gp)
        missing = await stack.http.post(
            "/referrals",
            json=referral_body("4010232137"),
            headers=stack.auth("referrer:gp-oswestry"),
        )
    assert ok.status_code == 201
    assert clash.status_code == 422
    assert clash.headers["content-type"].startswith("application/problem+json")
    assert missing.status_code == 400


async def test_second_referral_for_same_person_reenters_the_same_case(
    dev_env, broker, tmp_path, database_url
):
    async with running_stack(
        temporal_address(dev_env), broker, tmp_path, free_port(), database_url=database_url
    ) as stack:
        body = referral_body("9876543210")
        gp = "referrer:gp-oswestry"
        first = await stack.http.post("/referrals", json=body, headers=stack.auth(gp, key=True))
        referral_id = first.json()["referral_id"]
        decline = await stack.http.post(
            f"/referrals/{referral_id}/decline",
            json={"reason_code": "out_of_area", "expected_version": 1},
            headers=stack.auth("tier_one:north-wellbeing", key=True),
        )
        again = await stack.http.post("/referrals", json=body, headers=stack.auth(gp, key=True))
    assert decline.status_code == 200, decline.text
    assert again.status_code == 200, again.text
    assert again.json() == {
        "referral_id": referral_id,
        "episode": 2,
        "stage": "triage",
        "reentry": True,
    }


async def test_invalid_nhs_number_gets_problem_without_echoing_it(
    dev_env, broker, tmp_path, database_url
):
    async with running_stack(
        temporal_address(dev_env), broker, tmp_path, free_port(), database_url=database_url
    ) as stack:
        bad = await stack.http.post(
            "/referrals",
            json=referral_body("9434765918"),
            headers=stack.auth("referrer:gp-oswestry", key=True),
        )
    assert bad.status_code == 422
    assert "valid NHS number" in bad.json()["detail"]
    assert "9434765918" not in bad.text
