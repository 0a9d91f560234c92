"""The directory's HTTP surface, in process: anyone reads it, only an admin changes it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api import directory as directory_api
from api import problems
from api.auth import mint_token
from api.tenancy import Role
from directory import PrescriptionRejected, check_prescriptions, provider_topics, seed_demo
from directory.importer import DEMO_FILE
from infra.settings import Settings
from pathway.commands import PrescriptionInput


@pytest.fixture
async def http(settings: Settings, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    seed_demo(engine)
    app = FastAPI()
    problems.install(app)
    app.include_router(directory_api.router)
    app.state.settings = settings
    app.state.deps = SimpleNamespace(engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://linkway") as client:
        yield client


def bearer(settings: Settings, partner_id: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, partner_id, role, 'person-1')}"}


async def test_anyone_can_read_the_directory_without_a_token(http: httpx.AsyncClient) -> None:
    exercise = await http.get("/directory/services", params={"category": "exercise"})
    closed = await http.get("/directory/services/money-matters")
    waitlisted = await http.get("/directory/services", params={"capacity": "waitlist"})
    organizations = await http.get("/directory/organizations")
    missing = await http.get("/directory/services/yoga")

    assert [s["id"] for s in exercise.json()] == ["chair-exercise", "walks"]
    assert closed.json()["capacity"]["status"] == "closed"
    assert "adviser vacancy" in closed.json()["capacity"]["reason"]
    assert {s["id"]: s["capacity"]["waitlist_band"] for s in waitlisted.json()} == {
        "chair-exercise": "under_1_month",
        "carers-cafe": "1_to_3_months",
    }
    assert [o["id"] for o in organizations.json()] == ["befriending", "walking-group"]
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_only_an_admin_can_close_a_service_and_then_it_cannot_be_prescribed(
    http: httpx.AsyncClient, settings: Settings, engine: Engine
) -> None:
    closing = {"status": "closed", "reason": "leader on leave until May"}

    anonymous = await http.put("/directory/services/walks/capacity", json=closing)
    link_worker = await http.put(
        "/directory/services/walks/capacity",
        json=closing,
        headers=bearer(settings, "north-wellbeing", "tier_one"),
    )
    admin = await http.put(
        "/directory/services/walks/capacity",
        json=closing,
        headers=bearer(settings, "linkway-admin", "admin"),
    )

    assert (anonymous.status_code, link_worker.status_code, admin.status_code) == (401, 403, 200)
    assert admin.json()["capacity"] == {"status": "closed", "waitlist_band": None, **closing}
    with Session(engine) as session, pytest.raises(PrescriptionRejected, match="on leave"):
        check_prescriptions(
            session, [PrescriptionInput(provider_id="walking-group", service_id="walks")]
        )


async def test_an_admin_adds_a_provider_with_a_service_and_its_topic_is_wanted(
    http: httpx.AsyncClient, settings: Settings, engine: Engine
) -> None:
    admin = bearer(settings, "linkway-admin", "admin")
    body = {
        "name": "Men's Shed",
        "services": [
            {
                "id": "shed-sessions",
                "name": "Workshop sessions",
                "attributes": [
                    {"taxonomy_term": {"code": "peer_support", "name": "Peer support groups"}}
                ],
                "capacity": {"status": "waitlist", "waitlist_band": "over_3_months"},
            }
        ],
    }

    added = await http.put("/directory/organizations/mens-shed", json=body, headers=admin)
    orphan = await http.put(
        "/directory/services/orphan",
        json={"id": "orphan", "name": "Orphan", "organization_id": "nobody"},
        headers=admin,
    )
    bad_id = await http.put("/directory/organizations/Mens Shed", json=body, headers=admin)

    assert added.status_code == 200
    assert added.json()["services"][0]["capacity"]["waitlist_band"] == "over_3_months"
    assert orphan.status_code == 422 and "add the organization first" in orphan.json()["detail"]
    assert bad_id.status_code == 422 and bad_id.json()["detail"].startswith("path.organization_id:")
    with Session(engine) as session:
        assert "linkway.handoffs.mens-shed" in provider_topics(session)


async def test_an_admin_imports_an_hsds_document(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    document = json.loads(DEMO_FILE.read_text())
    document["organizations"][0]["services"][0]["name"] = "Led health walks (renamed)"

    imported = await http.post(
        "/directory/import", json=document, headers=bearer(settings, "linkway-admin", "admin")
    )
    walks = await http.get("/directory/services/walks")

    assert imported.json() == {"organizations": 2, "services": 5}
    assert walks.json()["name"] == "Led health walks (renamed)"
