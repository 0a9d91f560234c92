"""The service directory: HSDS import, capacity, and what the plan route asks of it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from directory import (
    DirectoryFileError,
    PrescriptionRejected,
    UnknownOrganization,
    check_prescriptions,
    hsds,
    provider_topics,
    seed_demo,
)
from directory.importer import DEMO_FILE, import_directory, parse
from directory.repository import DirectoryRepository
from infra.db import transaction
from pathway.commands import PrescriptionInput


@pytest.fixture
def demo(engine: Engine) -> Engine:
    assert seed_demo(engine) is not None
    return engine


def prescribe(engine: Engine, *pairs: tuple[str, str]) -> None:
    with Session(engine) as session:
        check_prescriptions(
            session, [PrescriptionInput(provider_id=p, service_id=s) for p, s in pairs]
        )


def test_the_demo_directory_serves_the_demo_providers(demo: Engine) -> None:
    with Session(demo) as session:
        repo = DirectoryRepository(session)
        walks = repo.service("walks")
        exercise = [s.id for s in repo.services(category="exercise")]
        closed = [s.id for s in repo.services(capacity="closed")]
        topics = provider_topics(session)

    assert walks is not None
    assert (walks.organization_id, walks.categories) == ("walking-group", ["exercise"])
    assert walks.service_at_locations[0].location.addresses[0].city == "Oswestry"
    assert exercise == ["chair-exercise", "walks"]
    assert closed == ["money-matters"]
    assert topics == ["linkway.handoffs.befriending", "linkway.handoffs.walking-group"]


def test_seeding_again_keeps_an_admins_changes(demo: Engine) -> None:
    with transaction(demo) as session:
        DirectoryRepository(session).set_capacity(
            "walks", hsds.Capacity(status="closed", reason="winter break")
        )

    assert seed_demo(demo) is None
    with Session(demo) as session:
        walks = DirectoryRepository(session).service("walks")
    assert walks is not None and walks.effective_capacity().reason == "winter break"


def test_prescribing_open_and_waitlisted_services_is_allowed(demo: Engine) -> None:
    prescribe(demo, ("walking-group", "walks"), ("befriending", "carers-cafe"))


def test_prescribing_a_closed_service_is_rejected_with_its_reason(demo: Engine) -> None:
    with pytest.raises(PrescriptionRejected) as rejected:
        prescribe(demo, ("walking-group", "walks"), ("befriending", "money-matters"))

    assert str(rejected.value) == (
        "Money matters advice (money-matters) is closed to new referrals: adviser vacancy; "
        "taking new referrals again from 1 September"
    )


def test_every_bad_prescription_is_named_in_one_rejection(demo: Engine) -> None:
    with pytest.raises(PrescriptionRejected) as rejected:
        prescribe(demo, ("walking-group", "yoga"), ("befriending", "walks"))

    assert rejected.value.problems == [
        "prescriptions[0].service_id is not in the service directory",
        "prescriptions[1].provider_id is not the service's provider (walking-group)",
    ]


def test_a_service_not_active_in_hsds_terms_is_closed(demo: Engine) -> None:
    with transaction(demo) as session:
        repo = DirectoryRepository(session)
        service = repo.service("telephone-befriending")
        assert service is not None
        repo.save_service(service.model_copy(update={"status": "temporarily closed"}))

    with pytest.raises(PrescriptionRejected, match="the service is temporarily closed"):
        prescribe(demo, ("befriending", "telephone-befriending"))


def test_saving_a_service_replaces_its_categories_and_locations(demo: Engine) -> None:
    with transaction(demo) as session:
        repo = DirectoryRepository(session)
        walks = repo.service("walks")
        assert walks is not None
        repo.save_service(
            walks.model_copy(
                update={
                    "attributes": [hsds.category("exercise"), hsds.category("mental_health")],
                    "service_at_locations": [],
                }
            )
        )
        saved = repo.service("walks")

    assert saved is not None
    assert (saved.categories, saved.service_at_locations) == (["exercise", "mental_health"], [])


def test_a_service_of_an_unknown_organization_is_refused(engine: Engine) -> None:
    directory = parse({"services": [{"id": "s-1", "organization_id": "nobody", "name": "S"}]})

    with (
        pytest.raises(UnknownOrganization, match="add the organization first"),
        transaction(engine) as session,
    ):
        import_directory(session, directory)


def test_an_hsds_file_with_fields_linkway_does_not_keep_imports(engine: Engine) -> None:
    body: dict[str, Any] = json.loads(DEMO_FILE.read_text())
    body["organizations"][0]["email"] = "info@walking-group.example"
    body["organizations"][0]["services"][0]["languages"] = [{"name": "Welsh"}]

    with transaction(engine) as session:
        result = import_directory(session, parse(json.dumps(body)))

    assert (result.organizations, result.services) == (2, 5)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not valid JSON"),
        (b'{"organizations": [{"id": "Walking Group", "name": "W"}]}', "organizations.0.id"),
        (
            b'{"services": [{"id": "s", "name": "S", "capacity": {"status": "waitlist"}}]}',
            "a waitlist_band is given exactly when the status is waitlist",
        ),
        (
            b'{"services": [{"id": "s", "name": "S", "capacity": {"status": "closed"}}]}',
            "a closed service needs a reason",
        ),
    ],
)
def test_a_bad_hsds_file_is_refused_naming_the_field(raw: bytes, reason: str) -> None:
    with pytest.raises(DirectoryFileError, match=reason):
        parse(raw)
