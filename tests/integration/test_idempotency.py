"""Idempotency-Key on every creating request, and optimistic concurrency on commands,
on the real API, worker and Temporal dev server."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlmodel import Session, col, func, select

from activities.readmodel import ReferralRow
from api.commands import caller_key
from api.idempotency import IdempotencyStore, fingerprint
from infra.db import get_engine
from tests.conftest import free_port
from tests.integration.stack import ThreadedApi

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

GP = "referrer:gp-oswestry"
NORTH = "tier_one:north-wellbeing"
PROBLEM = "application/problem+json"


def referral(family_name: str = "Keyholder") -> dict:
    return {
        "locality": "oswestry",
        "source": "gp",
        "referrer_org_id": "gp-1",
        "consent_to_share": True,
        "person": {"given_name": "Ida", "family_name": family_name},
    }


def referral_count(api: ThreadedApi) -> int:
    with Session(get_engine(api.settings)) as session:
        return session.exec(select(func.count()).select_from(ReferralRow)).one()


async def test_a_creating_request_without_a_key_is_400(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    answer = await http.post("/referrals", json=referral(), headers=api.auth(GP))
    assert (answer.status_code, answer.headers["content-type"]) == (400, PROBLEM)
    assert "Idempotency-Key" in answer.json()["detail"]


async def test_same_key_and_body_returns_the_original_response_and_creates_once(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    before = referral_count(api)
    headers = api.auth(GP, key="same-key-1")
    first = await http.post("/referrals", json=referral(), headers=headers)
    again = await http.post("/referrals", json=referral(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert referral_count(api) == before + 1


async def test_same_key_with_a_different_body_or_path_is_422(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    headers = api.auth(GP, key="same-key-2")
    assert (await http.post("/referrals", json=referral(), headers=headers)).status_code == 201
    other = await http.post("/referrals", json=referral("Different"), headers=headers)
    assert (other.status_code, other.headers["content-type"]) == (422, PROBLEM)
    assert "different request" in other.json()["detail"]
    assert "Different" not in other.text


async def test_keys_belong_to_their_caller(http: httpx.AsyncClient, api: ThreadedApi) -> None:
    key = f"shared-{uuid.uuid4().hex}"
    mine = await http.post("/referrals", json=referral(), headers=api.auth(GP, key=key))
    theirs = await http.post(
        "/referrals", json=referral(), headers=api.auth("referrer:gp-ludlow", key=key)
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["referral_id"] != theirs.json()["referral_id"]


async def test_a_retry_while_the_first_request_runs_is_409(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    # The first request is still in flight: its key is reserved and pending.
    from api.auth import Caller

    key, body = f"inflight-{uuid.uuid4().hex}", {"text": "a note"}
    store = IdempotencyStore(get_engine(api.settings))
    made = await http.post("/referrals", json=referral(), headers=api.auth(GP, key=True))
    referral_id = made.json()["referral_id"]
    north = Caller("demo-tier_one.north-wellbeing", "tier_one", "north-wellbeing")
    from api.personal_data import PersonalDataStore, load_keys

    people = PersonalDataStore(get_engine(api.settings), load_keys(api.settings))
    identity = {"path": f"/referrals/{referral_id}/notes", "text": people.digest(body["text"])}
    store.begin(caller_key(north), key, fingerprint(identity), uuid.uuid4().hex)
    answer = await http.post(
        f"/referrals/{referral_id}/notes", json=body, headers=api.auth(NORTH, key=key)
    )
    assert (answer.status_code, answer.headers["content-type"]) == (409, PROBLEM)
    assert answer.headers["retry-after"] == "1"


async def test_concurrent_retries_create_one_referral(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    before = referral_count(api)
    headers = api.auth(GP, key=f"race-{uuid.uuid4().hex}")
    answers = await asyncio.gather(
        *(http.post("/referrals", json=referral(), headers=headers) for _ in range(4))
    )
    assert {a.status_code for a in answers} <= {201, 409}
    created = {a.json()["referral_id"] for a in answers if a.status_code == 201}
    assert len(created) == 1
    assert referral_count(api) == before + 1


async def test_a_command_retried_with_its_key_is_applied_once(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    made = await http.post("/referrals", json=referral(), headers=api.auth(GP, key=True))
    rid = made.json()["referral_id"]
    headers = api.auth(NORTH, key=f"accept-{uuid.uuid4().hex}")
    body = {"expected_version": 1, "link_worker_id": "lw-1"}
    first = await http.post(f"/referrals/{rid}/accept", json=body, headers=headers)
    again = await http.post(f"/referrals/{rid}/accept", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert (
        again.json()
        == first.json()
        == {
            "referral_id": rid,
            "version": 2,
            "episode": 1,
            "stage": "contacting",
            "activity_id": None,  # only a logged activity has one
        }
    )
    missing = await http.post(f"/referrals/{rid}/accept", json=body, headers=api.auth(NORTH))
    assert missing.status_code == 400


async def test_a_stale_version_is_409_and_the_current_one_succeeds(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    made = await http.post("/referrals", json=referral(), headers=api.auth(GP, key=True))
    rid = made.json()["referral_id"]
    accept = {"expected_version": 1, "link_worker_id": "lw-1"}
    ok = await http.post(f"/referrals/{rid}/accept", json=accept, headers=api.auth(NORTH, True))
    assert ok.json()["version"] == 2
    # Another link worker still holds version 1.
    stale = await http.post(
        f"/referrals/{rid}/link-worker",
        json={"expected_version": 1, "link_worker_id": "lw-2"},
        headers=api.auth(NORTH, True),
    )
    assert (stale.status_code, stale.headers["content-type"]) == (409, PROBLEM)
    assert "changed since you read it" in stale.json()["detail"]
    seen = await http.get(f"/referrals/{rid}", headers=api.auth(NORTH))
    current = await http.post(
        f"/referrals/{rid}/link-worker",
        json={"expected_version": seen.json()["version"], "link_worker_id": "lw-2"},
        headers=api.auth(NORTH, True),
    )
    assert current.status_code == 200, current.text
    unversioned = await http.post(
        f"/referrals/{rid}/link-worker",
        json={"link_worker_id": "lw-3"},
        headers=api.auth(NORTH, True),
    )
    assert unversioned.status_code == 422
    assert "expected_version" in unversioned.text


async def test_a_rejected_command_answers_with_the_validators_message(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    made = await http.post("/referrals", json=referral(), headers=api.auth(GP, key=True))
    rid = made.json()["referral_id"]
    plan = await http.post(
        f"/referrals/{rid}/plan",
        json={"expected_version": 1, "goal_count": 2},
        headers=api.auth(NORTH, True),
    )
    assert (plan.status_code, plan.headers["content-type"]) == (409, PROBLEM)
    assert plan.json()["title"] == "Command rejected"
    assert "triage" in plan.json()["detail"]
    with Session(get_engine(api.settings)) as session:
        row = session.exec(select(ReferralRow).where(col(ReferralRow.referral_id) == rid)).one()
    assert (row.version, row.stage) == (1, "triage")


def new_nhs_number() -> str:
    from events.nhs_number import nhs_number_is_valid

    while True:
        number = f"{uuid.uuid4().int % 10**9:09d}"
        for check in "0123456789":
            if nhs_number_is_valid(number + check):
                return number + check


async def test_concurrent_first_referrals_for_one_new_person_open_one_case(
    api: ThreadedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two API processes (here two servers on their own threads, over one database) each
    take a first referral for the same new person at the same moment: both look the
    person up before either has stored them (a barrier holds each lookup until the other
    has made its own), both try to store them, the unique blind index lets one, and the
    other joins that case as a re-referral would: one case, one person record."""
    import threading

    from api.personal_data import PersonalDataStore, PersonRecord, load_keys

    real = PersonalDataStore.find_by_nhs_number
    both_looked = threading.Barrier(2, timeout=20)
    first_lookups = iter(range(2))

    def racing_lookup(self: PersonalDataStore, *args: object, **kwargs: object) -> str | None:
        found = real(self, *args, **kwargs)  # type: ignore[arg-type]
        if next(first_lookups, None) is not None:
            both_looked.wait()  # the other request has looked too, and found nothing
        return found

    monkeypatch.setattr(PersonalDataStore, "find_by_nhs_number", racing_lookup)
    nhs = new_nhs_number()
    body = {
        **referral(),
        "person": {"given_name": "Ida", "family_name": "Twice", "nhs_number": nhs},
    }
    overrides = {"database_url": api.settings.database_url} if api.settings.database_url else {}
    with ThreadedApi(
        api.settings.temporal_address, api.settings.data_dir, free_port(), **overrides
    ) as other:
        async with (
            httpx.AsyncClient(base_url=other.base_url, timeout=30) as other_http,
            httpx.AsyncClient(base_url=api.base_url, timeout=30) as http,
        ):
            answers = await asyncio.gather(
                http.post("/referrals", json=body, headers=api.auth(GP, key=True)),
                other_http.post("/referrals", json=body, headers=other.auth(GP, key=True)),
            )
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    created, joined = sorted(answers, key=lambda a: a.status_code, reverse=True)
    assert joined.json()["reentry"] is True
    assert joined.json()["referral_id"] == created.json()["referral_id"]
    people = PersonalDataStore(get_engine(api.settings), load_keys(api.settings))
    with Session(get_engine(api.settings)) as session:
        records = session.exec(
            select(PersonRecord.referral_id).where(PersonRecord.nhs_index == people.nhs_index(nhs))
        ).all()
    assert records == [created.json()["referral_id"]]
