"""The completion report end to end on the embedded stack: the link worker records it
after the episode ends, the event carries no personal data, and the link worker
downloads it as one self-contained HTML page with the person's name and own words
(both reads audited)."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session, col, select

from api.personal_data import AuditRecord
from infra.db import get_engine
from messaging.outbox import OutboxRow
from tests.integration.stack import ThreadedApi, refer, walk

pytestmark = pytest.mark.integration

NORTH = "tier_one:north-wellbeing"
WORDS = "I walk with the group every week & feel <much> better"


async def test_the_link_worker_records_and_downloads_the_completion_report(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    person = {"given_name": "Report", "family_name": "Reader", "nhs_number": "9434765803"}
    rid = await refer(http, api, NORTH, person)
    plan = {
        "goal_count": 2,
        "prescriptions": [{"provider_id": "walking-group", "service_id": "walks"}],
    }
    steps = [
        ("accept", {}),
        ("contact-attempts", {"outcome": "contacted"}),
        ("assessment", {"support_level": "2"}),
        ("plan", plan),
        ("review", {"decision": "dormant", "early_reason_code": "goals_met"}),
    ]
    await walk(http, api, NORTH, rid, steps)
    # A Well-being Action Fund grant for goal 2, approved by a colleague and spent.
    cm = "contract_manager:commissioner"
    fund_body = {"contract_id": "c-report", "period": "2026-27", "budget_pence": 10_000}
    fund = (await http.post("/funds", json=fund_body, headers=api.auth(cm, True))).json()
    grant = {"referral_id": rid, "goal_id": "2", "purpose": "travel",
             "supplier": "Secret Coaches Ltd", "amount_pence": 1_250}  # fmt: skip
    asked = await http.post(
        f"/funds/{fund['fund_id']}/grants", json=grant, headers=api.auth(NORTH, True)
    )
    assert asked.status_code == 201, asked.text
    url = f"/funds/{fund['fund_id']}/grants/{asked.json()['grant_id']}"
    approved = await http.post(
        f"{url}/approve", headers=api.auth("link_worker:north-wellbeing", True)
    )
    assert approved.status_code == 200, approved.text
    note = await http.post(
        f"/referrals/{rid}/notes", json={"text": WORDS}, headers=api.auth(NORTH, True)
    )
    assert note.status_code == 201, note.text
    recorded = await http.post(
        f"/referrals/{rid}/completion-report",
        json={
            "goals": [{"goal": 1, "achieved": "achieved"}, {"goal": 2, "achieved": "not_achieved"}],
            "ongoing_plan": ["self_managing"],
            "own_words_note_id": note.json()["note_id"],
            "expected_version": 6,
        },
        headers=api.auth(NORTH, True),
    )
    assert recorded.status_code == 200, recorded.text

    page = await http.get(f"/referrals/{rid}/completion-report", headers=api.auth(NORTH, True))

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Report Reader" in html
    assert "every week &amp; feel &lt;much&gt; better" in html and "<much>" not in html
    assert "Goal 1: Achieved" in html and "Goal 2: Not achieved" in html
    assert "self managing" in html and "walks" in html
    assert "<td>travel</td><td>Goal 2</td><td>£12.50</td><td>Approved</td>" in html
    assert "Secret Coaches" not in html
    assert "http" not in html.lower().replace("http-equiv", "")  # nothing fetched
    assert "<script" not in html and "src=" not in html
    with Session(get_engine(api.settings)) as session:
        event = session.exec(
            select(OutboxRow).where(
                OutboxRow.key == rid, OutboxRow.type == "linkway.referral.completion_reported.v1"
            )
        ).one()
        audited = session.exec(
            select(AuditRecord).where(
                col(AuditRecord.referral_id) == rid, AuditRecord.purpose == "completion_report"
            )
        ).all()
    assert "every week" not in event.payload and "Reader" not in event.payload
    assert '"own_words_recorded": true' in event.payload.replace('":true', '": true')
    assert {(a.action, a.resource) for a in audited} == {("read", "person"), ("read", "notes")}


async def test_no_report_while_the_episode_runs_and_none_to_download(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    body = {
        "locality": "oswestry",
        "source": "gp",
        "referrer_org_id": "gp-1",
        "consent_to_share": True,
        "person": {"given_name": "Not", "family_name": "Yet", "nhs_number": "9434765811"},
    }
    rid = (await http.post("/referrals", json=body, headers=api.auth(NORTH, True))).json()[
        "referral_id"
    ]
    early = await http.post(
        f"/referrals/{rid}/completion-report",
        json={"expected_version": 1},
        headers=api.auth(NORTH, True),
    )
    missing = await http.get(f"/referrals/{rid}/completion-report", headers=api.auth(NORTH, True))
    theirs = await http.get(
        f"/referrals/{rid}/completion-report", headers=api.auth("tier_one:south-wellbeing", True)
    )
    assert early.status_code == 409, early.text
    assert missing.status_code == 404
    assert theirs.status_code == 404
