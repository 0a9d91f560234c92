"""A provider reads the person's contact details through the API: only for its own live
handoff, only the contact fields, and every read is audited."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session, col, select

from api.personal_data import AuditRecord
from infra.db import get_engine
from tests.integration.stack import ThreadedApi, refer, walk

pytestmark = pytest.mark.integration

NORTH = "tier_one:north-wellbeing"
WALKS = "tier_two:walking-group"
FRIENDS = "tier_two:befriending"
PERSON = {
    "given_name": "Contact",
    "family_name": "Tester",
    "nhs_number": "4010232137",
    "date_of_birth": "1951-03-04",
    "phone": "07700 900456",
    "notes": "prefers mornings",
}


async def planned_referral(
    http: httpx.AsyncClient, api: ThreadedApi, nhs_number: str
) -> tuple[str, str]:
    rid = await refer(http, api, NORTH, {**PERSON, "nhs_number": nhs_number})
    plan = {
        "goal_count": 1,
        "prescriptions": [{"provider_id": "walking-group", "service_id": "walks"}],
    }
    steps = [
        ("accept", {}),
        ("contact-attempts", {"outcome": "contacted"}),
        ("assessment", {"support_level": "2"}),
        ("plan", plan),
    ]
    await walk(http, api, NORTH, rid, steps)
    handoffs = await http.get("/provider/handoffs", headers=api.auth(WALKS))
    assert handoffs.status_code == 200, handoffs.text
    (handoff,) = [h for h in handoffs.json() if h["referral_id"] == rid]
    return rid, handoff["handoff_id"]


def provider_reads(api: ThreadedApi, referral_id: str, action: str = "read") -> int:
    with Session(get_engine(api.settings)) as session:
        rows = session.exec(
            select(AuditRecord).where(
                col(AuditRecord.referral_id) == referral_id,
                col(AuditRecord.partner_id) == "walking-group",
                col(AuditRecord.action) == action,
            )
        ).all()
    return len(rows)


async def test_provider_reads_only_contact_fields_for_its_own_live_handoff(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    rid, handoff_id = await planned_referral(http, api, "4010232137")
    url = f"/provider/handoffs/{handoff_id}/contact"

    mine = await http.get(url, headers=api.auth(WALKS))
    theirs = await http.get(url, headers=api.auth(FRIENDS))
    missing = await http.get(
        "/provider/handoffs/no-such-handoff/contact", headers=api.auth(FRIENDS)
    )

    assert mine.status_code == 200, mine.text
    assert mine.json() == {
        "given_name": "Contact",
        "family_name": "Tester",
        "phone": "07700 900456",
        "email": None,
    }
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"] == missing.json()["detail"]
    assert provider_reads(api, rid) == 1


async def test_no_contact_details_once_consent_is_withdrawn(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    rid, handoff_id = await planned_referral(http, api, "9876543210")
    withdrawn = await http.post(
        f"/referrals/{rid}/consent/withdraw",
        json={"expected_version": 5},
        headers=api.auth(NORTH, True),
    )
    assert withdrawn.status_code == 200, withdrawn.text

    after = await http.get(f"/provider/handoffs/{handoff_id}/contact", headers=api.auth(WALKS))

    assert after.status_code == 404
    assert provider_reads(api, rid) == 0
    assert provider_reads(api, rid, "refused") == 1


async def casework(
    http: httpx.AsyncClient, api: ThreadedApi, rid: str, path: str, body: dict
) -> None:
    seen = await http.get(f"/referrals/{rid}", headers=api.auth(NORTH, True))
    assert seen.status_code == 200, seen.text
    done = await http.post(
        f"/referrals/{rid}/{path}",
        json={**body, "expected_version": seen.json()["version"]},
        headers=api.auth(NORTH, True),
    )
    assert done.status_code == 200, done.text


async def review_to_dormant(http: httpx.AsyncClient, api: ThreadedApi, rid: str) -> None:
    await casework(
        http, api, rid, "review", {"decision": "dormant", "early_reason_code": "goals_met"}
    )


async def end_episode(http: httpx.AsyncClient, api: ThreadedApi, rid: str) -> None:
    await casework(http, api, rid, "end-episode", {"reason_code": "withdrawn"})


async def unable_to_contact(http: httpx.AsyncClient, api: ThreadedApi, rid: str) -> None:
    # Unable to contact ends an episode before any plan, so it has no handoffs of its
    # own: the provider's handoff is the previous episode's, and the person came back.
    await casework(http, api, rid, "end-episode", {"reason_code": "disengaged"})
    await casework(http, api, rid, "reenter", {"source": "self", "referrer_org_id": "self"})
    await casework(http, api, rid, "accept", {})
    for _ in range(3):
        await casework(http, api, rid, "contact-attempts", {"outcome": "no_answer"})
    state = await http.get(f"/referrals/{rid}", headers=api.auth(NORTH, True))
    assert state.json()["stage"] == "dormant", state.text


async def consent_withdrawn(http: httpx.AsyncClient, api: ThreadedApi, rid: str) -> None:
    await casework(http, api, rid, "consent/withdraw", {})


@pytest.mark.parametrize(
    "ending",
    [review_to_dormant, end_episode, unable_to_contact, consent_withdrawn],
    ids=lambda f: f.__name__,
)
async def test_the_provider_loses_contact_details_however_the_episode_ends(
    http: httpx.AsyncClient, api: ThreadedApi, ending
) -> None:
    nhs = {
        "review_to_dormant": "9434765919",
        "end_episode": "9434765870",
        "unable_to_contact": "9434765862",
        "consent_withdrawn": "9434765854",
    }
    rid, handoff_id = await planned_referral(http, api, nhs[ending.__name__])
    url = f"/provider/handoffs/{handoff_id}/contact"
    assert (await http.get(url, headers=api.auth(WALKS))).status_code == 200

    await ending(http, api, rid)
    after = await http.get(url, headers=api.auth(WALKS))

    assert after.status_code == 404, after.text
    assert after.json()["detail"] == "no handoff with that id is visible to you"
    assert provider_reads(api, rid) == 1
    assert provider_reads(api, rid, "refused") == 1
