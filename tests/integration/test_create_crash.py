"""Creating a referral survives the API process dying at any point of the create path.

An API process (``tests.integration.doomed_api``) is killed at one point of
``POST /referrals``: before the person's details are written, after they are written,
after the workflow has started, after the answer is stored. The client then retries
with the same Idempotency-Key against a healthy API over the same database and Temporal
server. Every retry must converge to what one uninterrupted request makes: one case
(one person record, one workflow), one ``received`` event and no ``joined`` or
``reentered``, answered 201 with the id the first attempt reserved, and the crashed
holder's key free again within seconds, not minutes.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select
from temporalio.client import WorkflowExecutionStatus

from api.idempotency import LEASE, IdempotencyRecord
from api.personal_data import PersonalDataStore, PersonRecord, load_keys
from events.nhs_number import nhs_number_is_valid
from events.referral import ReferralJoined, ReferralReceived, ReferralReentered
from infra.db import get_engine
from messaging.outbox import OutboxRow
from tests.conftest import free_port, temporal_address
from tests.integration.doomed_api import SEAMS
from tests.integration.stack import ThreadedApi
from workflows import referral_workflow_id

pytestmark = pytest.mark.integration

GP = "referrer:gp-oswestry"
ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("test.create_crash")


def nhs_number(rng: random.Random) -> str:
    while True:
        number = "".join(rng.choice("0123456789") for _ in range(9))
        for check in "0123456789":
            if nhs_number_is_valid(number + check):
                return number + check


def referral(nhs: str) -> dict:
    return {
        "locality": "oswestry",
        "source": "gp",
        "referrer_org_id": "gp-1",
        "reason_codes": ["loneliness"],
        "consent_to_share": True,
        "person": {"given_name": "Ada", "family_name": "Crashtest", "nhs_number": nhs},
    }


@pytest.fixture(scope="module")
def api(dev_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedApi]:
    data = tmp_path_factory.mktemp("crash")
    with ThreadedApi(temporal_address(dev_env), data, free_port()) as a:
        yield a


@pytest.fixture
async def http(api: ThreadedApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
        yield client


def start_doomed(api: ThreadedApi, seam: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [str(api.settings.data_dir), api.settings.temporal_address, str(port)]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.doomed_api", seam, *args], cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return child, url
        except httpx.TransportError:
            pass
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise RuntimeError("the doomed API did not start")
        time.sleep(0.2)


async def retry_until_answered(
    http: httpx.AsyncClient, body: dict, headers: dict, within: float
) -> tuple[httpx.Response, float]:
    """Retry as a client would while the key is held (409); returns the answer and how long
    after the first retry it came."""
    started = time.monotonic()
    while True:
        answer = await http.post("/referrals", json=body, headers=headers)
        waited = time.monotonic() - started
        if answer.status_code != 409 or waited > within:
            return answer, waited
        time.sleep(0.2)


@pytest.mark.parametrize("seam", SEAMS)
async def test_a_create_interrupted_by_a_crash_converges_on_retry_to_one_new_case(
    seam: str, api: ThreadedApi, http: httpx.AsyncClient, dev_env
) -> None:
    nhs = nhs_number(random.Random(seam))
    key = f"crash-{seam}-{uuid.uuid4().hex}"
    body, headers = referral(nhs), api.auth(GP, key=key)

    child, url = start_doomed(api, seam)
    try:
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{url}/referrals", json=body, headers=headers, timeout=30)
        assert child.wait(timeout=10) == 137, "the API was meant to die mid-request"
    finally:
        if child.poll() is None:
            child.kill()
    engine = get_engine(api.settings)
    with Session(engine) as session:
        record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == key)).one()
    reserved = record.reserved_id

    # The crashed holder renews its lease no more: its key is free within one lease.
    answer, waited = await retry_until_answered(
        http, body, headers, within=LEASE.total_seconds() + 10
    )
    log.info("%s: the retry was answered %.1f s after the crash", seam, waited)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created == {"referral_id": reserved, "episode": 1, "stage": "triage", "reentry": False}
    assert waited <= LEASE.total_seconds() + 3

    again = await http.post("/referrals", json=body, headers=headers)
    assert (again.status_code, again.json()) == (201, created)

    # One case: one person record for this NHS number, under the reserved id...
    people = PersonalDataStore(engine, load_keys(api.settings))
    with Session(engine) as session:
        cases = session.exec(
            select(PersonRecord.referral_id).where(
                col(PersonRecord.nhs_index) == people.nhs_index(nhs)
            )
        ).all()
        types = session.exec(
            select(OutboxRow.type).where(OutboxRow.key == reserved).order_by(col(OutboxRow.seq))
        ).all()
    assert cases == [reserved]
    # ...one workflow, running, that received the referral once and saw nothing else.
    described = await dev_env.client.get_workflow_handle(referral_workflow_id(reserved)).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert list(types) == [ReferralReceived.TYPE]
    assert not {ReferralJoined.TYPE, ReferralReentered.TYPE} & set(types)


async def test_a_person_whose_create_died_before_its_workflow_can_still_be_referred(
    api: ThreadedApi, http: httpx.AsyncClient
) -> None:
    """The interrupted request is never retried: its person record has no case. The next
    referral for the person opens that case (not a 404 for ever, not a second case), and a
    late retry of the interrupted request answers with the same case."""
    nhs = nhs_number(random.Random("orphan"))
    key = f"orphan-{uuid.uuid4().hex}"
    child, url = start_doomed(api, "after_person")
    try:
        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"{url}/referrals", json=referral(nhs), headers=api.auth(GP, key), timeout=30
            )
        assert child.wait(timeout=10) == 137
    finally:
        if child.poll() is None:
            child.kill()
    engine = get_engine(api.settings)
    with Session(engine) as session:
        orphan = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == key)).one()

    other = await http.post("/referrals", json=referral(nhs), headers=api.auth(GP, True))
    assert other.status_code == 201, other.text
    assert other.json()["referral_id"] == orphan.reserved_id
    late, _ = await retry_until_answered(
        http, referral(nhs), api.auth(GP, key), within=LEASE.total_seconds() + 10
    )
    assert (late.status_code, late.json()) == (201, other.json())
    with Session(engine) as session:
        types = session.exec(
            select(OutboxRow.type).where(OutboxRow.key == orphan.reserved_id)
        ).all()
    assert list(types) == [ReferralReceived.TYPE]
