"""Caseloads from the read model: filters, due-date order and cursor pagination; and a
referral read with its episodes, handoffs, measures and due dates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.stack import ThreadedApi

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

GP = "referrer:gp-oswestry"
NORTH = "tier_one:north-wellbeing"
WEMWBS = {
    "instrument": "WEMWBS",
    "consent_ref": "c-1",
    "answers": {str(i): 2 for i in range(1, 15)},
}


@pytest.fixture(scope="module")
async def caseload(api: ThreadedApi) -> dict[str, str]:
    """Five north referrals: two accepted by lw-a (one rescheduled soon), one by the
    caller itself, two left in triage; and one south referral."""
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as http:

        async def refer(locality: str) -> str:
            body = {
                "locality": locality,
                "source": "gp",
                "referrer_org_id": "gp-1",
                "consent_to_share": True,
                "person": {"given_name": "Cas", "family_name": "Load"},
            }
            referrer = "referrer:gp-ludlow" if locality == "ludlow" else GP
            made = await http.post("/referrals", json=body, headers=api.auth(referrer, True))
            assert made.status_code == 201, made.text
            return str(made.json()["referral_id"])

        async def command(rid: str, path: str, body: dict, version: int) -> None:
            answer = await http.post(
                f"/referrals/{rid}/{path}",
                json={**body, "expected_version": version},
                headers=api.auth(NORTH, True),
            )
            assert answer.status_code == 200, answer.text

        ids = {
            "a1": await refer("oswestry"),
            "a2": await refer("shrewsbury"),
            "me": await refer("oswestry"),
            "t1": await refer("oswestry"),
            "t2": await refer("shrewsbury"),
            "south": await refer("ludlow"),
        }
        await command(ids["a1"], "accept", {"link_worker_id": "lw-a"}, 1)
        await command(ids["a2"], "accept", {"link_worker_id": "lw-a"}, 1)
        soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        await command(ids["a2"], "deadlines", {"deadline": "first_contact", "due_at": soon}, 2)
        await command(ids["me"], "accept", {"link_worker_id": "demo-tier_one.north-wellbeing"}, 1)
        await command(ids["me"], "contact-attempts", {"outcome": "contacted"}, 2)
        await command(ids["me"], "assessment", {"support_level": "2", "measures": [WEMWBS]}, 3)
        await command(
            ids["me"],
            "plan",
            {
                "goal_count": 2,
                "prescriptions": [{"provider_id": "walking-group", "service_id": "walks"}],
            },
            4,
        )
    return ids


@pytest.fixture
async def http(api: ThreadedApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
        yield client


async def page(http: httpx.AsyncClient, api: ThreadedApi, **params: str) -> dict:
    answer = await http.get("/caseload", params=params, headers=api.auth(NORTH))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def ids_of(body: dict) -> list[str]:
    return [item["referral_id"] for item in body["items"]]


async def test_caseload_filters_by_stage_worker_and_locality(
    http: httpx.AsyncClient, api: ThreadedApi, caseload: dict[str, str]
) -> None:
    triage = ids_of(await page(http, api, stage="triage", limit="200"))
    assert {caseload["t1"], caseload["t2"]} <= set(triage)
    assert caseload["a1"] not in triage and caseload["south"] not in triage
    assert set(ids_of(await page(http, api, link_worker_id="lw-a"))) == {
        caseload["a1"],
        caseload["a2"],
    }
    assert ids_of(await page(http, api, link_worker_id="me")) == [caseload["me"]]
    shrewsbury = set(ids_of(await page(http, api, locality="shrewsbury", limit="200")))
    assert {caseload["a2"], caseload["t2"]} <= shrewsbury and caseload["a1"] not in shrewsbury
    assert not (await page(http, api, locality="ludlow"))["items"]


async def test_caseload_is_soonest_due_first_and_filters_by_due_date(
    http: httpx.AsyncClient, api: ThreadedApi, caseload: dict[str, str]
) -> None:
    mine = await page(http, api, link_worker_id="lw-a")
    assert ids_of(mine) == [caseload["a2"], caseload["a1"]]  # a2 was rescheduled to soon
    assert mine["items"][0]["next_due_action"] == "first_contact"
    within_a_day = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    due_soon = ids_of(await page(http, api, link_worker_id="lw-a", due_before=within_a_day))
    assert due_soon == [caseload["a2"]]
    later = ids_of(await page(http, api, link_worker_id="lw-a", due_after=within_a_day))
    assert later == [caseload["a1"]]
    assert not (await page(http, api, link_worker_id="lw-a", overdue="true"))["items"]


async def test_cursor_pages_through_everything_once(
    http: httpx.AsyncClient, api: ThreadedApi, caseload: dict[str, str]
) -> None:
    everything = ids_of(await page(http, api, limit="200"))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = await page(http, api, **params)
        seen += ids_of(body)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    assert set(caseload.values()) - {caseload["south"]} <= set(seen)
    bad = await http.get("/caseload", params={"cursor": "nonsense"}, headers=api.auth(NORTH))
    assert bad.status_code == 422


async def test_referrals_list_pages_by_cursor_for_a_referrer(
    http: httpx.AsyncClient, api: ThreadedApi, caseload: dict[str, str]
) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        answer = await http.get("/referrals", params=params, headers=api.auth(GP))
        seen += [item["referral_id"] for item in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(caseload.values()) - {caseload["south"]} <= set(seen)
    assert caseload["south"] not in seen


async def test_a_referral_reads_with_episodes_handoffs_measures_and_due_dates(
    http: httpx.AsyncClient, api: ThreadedApi, caseload: dict[str, str]
) -> None:
    answer = await http.get(f"/referrals/{caseload['me']}", headers=api.auth(NORTH))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["stage"], body["support_level"], body["version"]) == ("supported", "2", 5)
    assert [e["number"] for e in body["episodes"]] == [1]
    assert [(h["provider_id"], h["status"]) for h in body["handoffs"]] == [
        ("walking-group", "requested")
    ]
    (measure,) = body["measures"]
    assert (measure["phase"], measure["instrument"], measure["episode"]) == (
        "baseline",
        "WEMWBS",
        1,
    )
    assert "review" in body["deadlines"]
    assert body["next_due_at"] is not None
    for value in (body["opened_at"], *body["deadlines"].values()):
        assert value.endswith(("Z", "+00:00")), value  # times carry their offset
