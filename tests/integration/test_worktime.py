"""Casework over HTTP on the real API, worker and Temporal dev server: logged time with a
correction and a deletion, summed per person, link worker and partner; structured goals
achieved at review; a mid-point measure in the referral's trajectory; a level 1
signposting plan ending at its check; and caseload capacity, each in the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.stack import ThreadedApi

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

NORTH = "tier_one:north-wellbeing"
SOUTH = "tier_one:south-wellbeing"
ME = "demo-tier_one.north-wellbeing"  # the demo Tier One token: the partner's manager
LINK = "link_worker:north-wellbeing"  # a plain link worker of the same partner
WORKER = "demo-link_worker.north-wellbeing"
WEMWBS_LOW = {
    "instrument": "WEMWBS",
    "consent_ref": "c-1",
    "answers": {str(i): 2 for i in range(1, 15)},
}
WEMWBS_MID = {
    "instrument": "WEMWBS",
    "consent_ref": "c-1",
    "answers": {str(i): 3 for i in range(1, 15)},
}
MYCAW = {"instrument": "MYCAW", "consent_ref": "c-1"}


class Casework:
    def __init__(self, http: httpx.AsyncClient, api: ThreadedApi, referral_id: str) -> None:
        self.http, self.api, self.id, self.version = http, api, referral_id, 1

    async def do(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        answer = await self.http.post(
            f"/referrals/{self.id}/{path}",
            json={**body, "expected_version": self.version},
            headers=self.api.auth(NORTH, True),
        )
        assert answer.status_code == status, answer.text
        if status == 200:
            self.version = answer.json()["version"]
        return dict(answer.json())

    async def read(self, tail: str = "", who: str = NORTH) -> httpx.Response:
        return await self.http.get(f"/referrals/{self.id}{tail}", headers=self.api.auth(who))


async def referred(http: httpx.AsyncClient, api: ThreadedApi) -> Casework:
    body = {
        "locality": "oswestry",
        "source": "gp",
        "referrer_org_id": "gp-1",
        "consent_to_share": True,
        "person": {"given_name": "Work", "family_name": "Time"},
    }
    made = await http.post("/referrals", json=body, headers=api.auth(NORTH, True))
    assert made.status_code == 201, made.text
    case = Casework(http, api, made.json()["referral_id"])
    await case.do("accept", {"link_worker_id": ME})
    await case.do("contact-attempts", {"outcome": "contacted"})
    return case


def activity(minutes: int, kind: str = "phone", direct: bool = True, **extra: Any) -> dict:
    started = (datetime.now(UTC) - timedelta(minutes=minutes + 5)).isoformat()
    return {
        "activity_type": kind,
        "direct": direct,
        "started_at": started,
        "minutes": minutes,
    } | extra


async def test_time_goals_and_a_mid_point_measure_on_one_referral(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    case = await referred(http, api)
    mycaw = {**MYCAW, "answers": {"concern_1": 5, "concern_2": 5, "wellbeing": 4}}
    await case.do("assessment", {"support_level": "2", "measures": [WEMWBS_LOW, mycaw]})
    await case.do(
        "plan",
        {
            "goals": [
                {"category": "family_friends", "target_date": "2027-06-30"},
                {"category": "housing"},
            ],
            "prescriptions": [{"provider_id": "walking-group", "service_id": "walks"}],
        },
    )
    bad = await case.do("plan", {"goals": [{"category": "astrology"}]}, status=422)
    assert "category must be one of" in bad["detail"]

    # Time: a home visit and a call by the caller, admin by a colleague; the call is
    # corrected, the admin deleted.
    visit = await case.do("activities", activity(55, "home_visit"))
    call = await case.do("activities", activity(10))
    admin = await case.do("activities", activity(20, "admin", False, link_worker_id="lw-b"))
    assert visit["activity_id"] and call["activity_id"] != visit["activity_id"]
    await case.do("activities/correct", {**activity(15), "activity_id": call["activity_id"]})
    await case.do(
        "activities/delete",
        {"activity_id": admin["activity_id"], "reason_code": "logged_in_error"},
    )
    gone = await case.do(
        "activities/delete",
        {"activity_id": admin["activity_id"], "reason_code": "again"},
        status=409,
    )
    assert "no activity" in gone["detail"]
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    future = await case.do("activities", activity(10, started_at=in_an_hour), status=422)
    assert "in the future" in future["detail"]

    # The mid-point: measures and a goal moving; then an early review achieving one.
    mid_mycaw = {**MYCAW, "answers": {"concern_1": 3, "concern_2": 4, "wellbeing": 3}}
    await case.do(
        "checkin",
        {
            "on_track": True,
            "measures": [WEMWBS_MID, mid_mycaw],
            "goals": [{"goal": 1, "status": "in_progress"}],
        },
    )
    await case.do(
        "review",
        {
            "decision": "ongoing_support",
            "early_reason_code": "goals_met",
            "measures": [WEMWBS_MID],
            "goals": [{"goal": 1, "status": "achieved"}, {"goal": 2, "status": "partly_achieved"}],
        },
    )

    listed = await case.read("/activities")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    # Newest first: the call (corrected to 15 minutes) started after the visit.
    assert [(a["activity_type"], a["minutes"]) for a in body["items"]] == [
        ("phone", 15),
        ("home_visit", 55),
    ]
    assert body["summary"] == {
        "key": case.id,
        "sessions": 2,
        "minutes": 70,
        "direct_minutes": 70,
        "indirect_minutes": 0,
        "by_type": {"home_visit": 55, "phone": 15},
    }
    assert (await case.read("/activities", SOUTH)).status_code == 404

    read = (await case.read()).json()
    assert [(g["category"], g["status"], g["at_review"]) for g in read["goals"]] == [
        ("family_friends", "achieved", "achieved"),
        ("housing", "partly_achieved", "partly_achieved"),
    ]
    trajectory = {t["instrument"]: t["points"] for t in read["trajectory"]}
    assert [p["phase"] for p in trajectory["WEMWBS"]] == ["baseline", "midpoint", "review"]
    assert [p["phase"] for p in trajectory["MYCAW"]] == ["baseline", "midpoint"]
    assert trajectory["MYCAW"][1]["raw"]["profile"] == 3.33
    assert read["path"] == "full"

    mine = await http.get(
        "/activities/summary",
        params={"by": "link_worker", "link_worker_id": "me"},
        headers=api.auth(NORTH),
    )
    assert mine.status_code == 200, mine.text
    (me,) = mine.json()["items"]
    assert me["key"] == ME and me["minutes"] >= 70
    partners = await http.get(
        "/activities/summary", params={"by": "partner"}, headers=api.auth(NORTH)
    )
    assert [p["key"] for p in partners.json()["items"]] == ["north-wellbeing"]
    south = await http.get("/activities/summary", headers=api.auth(SOUTH))
    assert south.json()["items"] == []
    backwards = await http.get(
        "/activities/summary",
        params={"since": "2027-02-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"},
        headers=api.auth(NORTH),
    )
    assert backwards.status_code == 422

    capacity = await http.get(
        "/caseload/capacity", params={"link_worker_id": "me"}, headers=api.auth(NORTH)
    )
    assert capacity.status_code == 200, capacity.text
    (row,) = capacity.json()["items"]
    assert row["link_worker_id"] == ME and row["annual_capacity"] == 250
    assert row["open_cases"] >= 1 and row["started_last_12_months"] >= 1
    assert row["minutes_this_month"] >= 70 or datetime.now(UTC).day == 1
    assert (await http.get("/caseload/capacity", headers=api.auth(SOUTH))).json()["items"] == []

    # A plain link worker sees their own time and capacity row; their manager the team's.
    await case.do("activities", activity(25, "phone", link_worker_id=WORKER))
    for who, workers in ((LINK, {WORKER}), (NORTH, {ME, WORKER})):
        summed = await http.get("/activities/summary", headers=api.auth(who))
        assert {i["key"] for i in summed.json()["items"]} == workers, who
        rows = (await http.get("/caseload/capacity", headers=api.auth(who))).json()["items"]
        assert {r["link_worker_id"] for r in rows} >= workers - {WORKER}
        assert not {r["link_worker_id"] for r in rows} - workers
    (own,) = (await http.get("/activities/summary", headers=api.auth(LINK))).json()["items"]
    assert own["minutes"] == 25
    for path in ("/activities/summary", "/caseload/capacity"):
        asked = await http.get(path, params={"link_worker_id": ME}, headers=api.auth(LINK))
        assert asked.status_code == 200 and asked.json()["items"] == []  # not theirs to see


async def test_a_level_1_plan_signposts_and_ends_at_its_check(
    http: httpx.AsyncClient, api: ThreadedApi
) -> None:
    case = await referred(http, api)
    await case.do("assessment", {"support_level": "1", "measures": [WEMWBS_LOW]})
    refused = await case.do(
        "plan",
        {
            "goal_count": 1,
            "prescriptions": [{"provider_id": "walking-group", "service_id": "walks"}],
        },
        status=409,
    )
    assert "signposting only" in refused["detail"]
    unknown = await case.do(
        "plan",
        {"goal_count": 1, "signposts": [{"category": "walking", "service_id": "no-such-service"}]},
        status=422,
    )
    assert "not in the service directory" in unknown["detail"]
    await case.do(
        "plan", {"goal_count": 1, "signposts": [{"category": "walking", "service_id": "walks"}]}
    )
    read = (await case.read()).json()
    assert (read["path"], read["handoffs"], sorted(read["deadlines"])) == (
        "signposting",
        [],
        ["review"],
    )
    await case.do("review", {"decision": "dormant", "early_reason_code": "x"}, status=409)

    await case.do("signpost-check", {"outcome": "connected"})

    read = (await case.read()).json()
    assert (read["stage"], read["episodes"][0]["path"]) == ("dormant", "signposting")
