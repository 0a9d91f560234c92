"""What the plan route asks the directory before it sends a plan to the workflow (which
can do no I/O): does every prescription name a service that exists, is provided by the
named provider, and is not closed? And which handoff topics must exist for the relay?"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sqlmodel import Session

from directory.errors import PrescriptionRejected
from directory.repository import DirectoryRepository
from events.topics import handoffs_topic


class Prescription(Protocol):
    @property
    def provider_id(self) -> str: ...

    @property
    def service_id(self) -> str: ...


def check_prescriptions(session: Session, prescriptions: Iterable[Prescription]) -> None:
    """Raise ``PrescriptionRejected`` naming every prescription that cannot be made.

    A waitlisted service is accepted: the link worker may choose to wait, and the
    provider's own waitlist answer escalates if the wait is longer than the plan allows.
    """
    repo = DirectoryRepository(session)
    problems = []
    # Named by position, never by the ids sent: an error does not repeat the request.
    for i, p in enumerate(prescriptions):
        service = repo.service(p.service_id)
        if service is None:
            problems.append(f"prescriptions[{i}].service_id is not in the service directory")
        elif service.organization_id != p.provider_id:
            problems.append(
                f"prescriptions[{i}].provider_id is not the service's provider "
                f"({service.organization_id})"
            )
        else:
            capacity = service.effective_capacity()
            if capacity.status == "closed":
                problems.append(
                    f"{service.name} ({p.service_id}) is closed to new referrals: {capacity.reason}"
                )
    if problems:
        raise PrescriptionRejected("; ".join(problems), problems)


def check_signposts(session: Session, service_ids: Iterable[str | None]) -> None:
    """Raise ``PrescriptionRejected`` for a signpost to a service not in the directory
    (a signpost with no service id is to something outside it, described in a note)."""
    repo = DirectoryRepository(session)
    problems = [
        f"signposts[{i}].service_id is not in the service directory"
        for i, service_id in enumerate(service_ids)
        if service_id is not None and repo.service(service_id) is None
    ]
    if problems:
        raise PrescriptionRejected("; ".join(problems), problems)


def provider_topics(session: Session) -> list[str]:
    """One handoff topic per provider organisation in the directory."""
    return [
        handoffs_topic(provider_id) for provider_id in DirectoryRepository(session).provider_ids()
    ]
