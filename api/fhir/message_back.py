"""The message back to the GP record and the referrer: a FHIR R4 ``message`` Bundle the
GP system can file, built from the referrer's view (``pathway.referrer``).

What it holds, first to last:

- ``MessageHeader``: the event (the latest milestone), from Linkway to the referring
  organisation, its focus the referral;
- ``Patient``: the NHS number and nothing else (no name, birth date or address: the GP
  system matches its own record by NHS number; with none recorded, the Patient has no
  identifier and the practice files it by the referral id it sent);
- ``ServiceRequest``: the referral, coded SNOMED CT 871731000000106 "Referral to social
  prescribing service", identified by the pseudonymous referral id;
- ``Task``: where the referral is at the service, with the coded reason of a decline
  (SNOMED CT 871711000000103 "Social prescribing declined" and the reason's own code);
- one ``Observation`` per milestone (accepted, declined, first contact, assessed, plan
  agreed, reviewed, ended, completed), coded in SNOMED CT where NHS England codes it and
  in Linkway's code system otherwise; a completed episode's summary (goals achieved,
  sessions attended, improved measures, the ongoing plan) only with the person's consent.

Pure: the caller reads the NHS number (audited) and passes it in; every resource is a
model of the FHIR library, so a Bundle that would not validate is never served.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.messageheader import (
    MessageHeader,
    MessageHeaderDestination,
    MessageHeaderSource,
)
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from api.fhir import LINKWAY_CODES, LINKWAY_REASONS, NHS_NUMBER, PARTNER_ID, REFERRAL_ID
from pathway.referrer import (
    REFERRAL_TO_SOCIAL_PRESCRIBING,
    SNOMED,
    SOCIAL_PRESCRIBING_DECLINED,
    Milestone,
    ReferrerView,
)

_NAMESPACE = uuid.UUID("6f1c2a8e-4b7d-4f0e-9a51-6c0d3b2e9f17")

# Where the referral is at the service, as the Task's status.
TASK_STATUS = {
    "received": "requested",
    "accepted": "accepted",
    "declined": "rejected",
    "first_contact": "in-progress",
    "assessed": "in-progress",
    "plan_agreed": "in-progress",
    "reviewed": "in-progress",
    "ended": "completed",
    "completed": "completed",
}
SERVICE_REQUEST_STATUS = {"declined": "revoked", "ended": "completed", "completed": "completed"}


@dataclass(frozen=True)
class Referral:
    """What the message says about the referral beside the referrer's view."""

    referral_id: str
    episode: int
    opened_at: datetime
    referrer_partner_id: str
    nhs_number: str | None


def _urn(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(map(str, parts)))}"


def _concept(milestone: Milestone) -> CodeableConcept:
    codings = [Coding(system=LINKWAY_CODES, code=milestone.status, display=milestone.display)]
    if milestone.snomed:
        codings.insert(
            0, Coding(system=SNOMED, code=milestone.snomed[0], display=milestone.snomed[1])
        )
    return CodeableConcept(coding=codings, text=milestone.display)


def build(referral: Referral, view: ReferrerView, now: datetime | None = None) -> Bundle:
    now = now or datetime.now(UTC)
    rid, ep = referral.referral_id, referral.episode
    patient_url, request_url, task_url = (_urn(rid, kind) for kind in ("patient", "sr", "task"))
    patient = Patient(
        identifier=[Identifier(system=NHS_NUMBER, value=referral.nhs_number)]
        if referral.nhs_number
        else None
    )
    subject = Reference(reference=patient_url)
    referrer = Reference(
        identifier=Identifier(system=PARTNER_ID, value=referral.referrer_partner_id)
    )
    request = ServiceRequest(
        identifier=[Identifier(system=REFERRAL_ID, value=f"{rid}/{ep}")],
        status=SERVICE_REQUEST_STATUS.get(view.status, "active"),
        intent="order",
        code=CodeableConcept(
            coding=[
                Coding(
                    system=SNOMED,
                    code=REFERRAL_TO_SOCIAL_PRESCRIBING[0],
                    display=REFERRAL_TO_SOCIAL_PRESCRIBING[1],
                )
            ]
        ),
        subject=subject,
        requester=referrer,
        authoredOn=referral.opened_at,
    )
    latest = view.milestones[-1] if view.milestones else None
    task = Task(
        identifier=[Identifier(system=REFERRAL_ID, value=f"{rid}/{ep}")],
        status=TASK_STATUS[view.status],
        intent="order",
        businessStatus=_concept(latest) if latest else None,
        statusReason=_reason(view) if view.reason else None,
        focus=Reference(reference=request_url),
        for_fhir=subject,
        requester=referrer,
        authoredOn=referral.opened_at,
        lastModified=latest.at if latest else referral.opened_at,
    )
    entries = [
        (patient_url, patient),
        (request_url, request),
        (task_url, task),
        *(
            (_urn(rid, ep, m.status), _observation(m, subject, request_url))
            for m in view.milestones
        ),
    ]
    if view.summary is not None:
        entries.append((_urn(rid, ep, "summary"), _summary(view, subject, request_url)))
    header = MessageHeader(
        eventCoding=Coding(
            system=LINKWAY_CODES,
            code=latest.status if latest else "received",
            display=latest.display if latest else "Referral received",
        ),
        source=MessageHeaderSource(endpoint="urn:linkway"),
        destination=[MessageHeaderDestination(endpoint="urn:linkway:referrer", receiver=referrer)],
        focus=[Reference(reference=request_url)],
    )
    return Bundle(
        identifier=Identifier(system=REFERRAL_ID, value=f"{rid}/{ep}/{view.status}"),
        type="message",
        timestamp=now,
        entry=[
            BundleEntry(fullUrl=url, resource=resource)
            for url, resource in [(_urn(rid, ep, "header", view.status), header), *entries]
        ],
    )


def _reason(view: ReferrerView) -> CodeableConcept:
    assert view.reason is not None
    codings = [Coding(system=LINKWAY_REASONS, code=view.reason.code, display=view.reason.display)]
    if view.status == "declined":
        code, display = SOCIAL_PRESCRIBING_DECLINED
        codings.insert(0, Coding(system=SNOMED, code=code, display=display))
    return CodeableConcept(coding=codings, text=view.reason.display)


def _observation(milestone: Milestone, subject: Reference, request_url: str) -> Observation:
    return Observation(
        status="final",
        code=_concept(milestone),
        subject=subject,
        basedOn=[Reference(reference=request_url)],
        effectiveDateTime=milestone.at,
        valueCodeableConcept=(
            CodeableConcept(
                coding=[
                    Coding(
                        system=LINKWAY_REASONS,
                        code=milestone.reason.code,
                        display=milestone.reason.display,
                    )
                ],
                text=milestone.reason.display,
            )
            if milestone.reason
            else None
        ),
    )


def _summary(view: ReferrerView, subject: Reference, request_url: str) -> Observation:
    s = view.summary
    assert s is not None

    def part(code: str, display: str, **value: object) -> ObservationComponent:
        concept = CodeableConcept(coding=[Coding(system=LINKWAY_CODES, code=code, display=display)])
        return ObservationComponent(code=concept, **value)

    def codes(values: list[str], system: str) -> CodeableConcept:
        return CodeableConcept(
            coding=[Coding(system=system, code=v) for v in values], text=", ".join(values)
        )

    components = [
        part("goals_achieved", "Goals achieved", valueInteger=s.goals_achieved),
        part("goal_count", "Goals in the plan", valueInteger=s.goal_count),
        part("sessions_attended", "Sessions attended", valueInteger=s.sessions_attended),
    ]
    if s.improved_instruments:
        components.append(
            part(
                "improved_measures",
                "Measures that improved",
                valueCodeableConcept=codes(s.improved_instruments, "urn:linkway:instrument"),
            )
        )
    if s.ongoing_plan:
        components.append(
            part(
                "ongoing_plan",
                "Ongoing plan",
                valueCodeableConcept=codes(s.ongoing_plan, "urn:linkway:codesystem:plan"),
            )
        )
    return Observation(
        status="final",
        code=CodeableConcept(
            coding=[
                Coding(system=LINKWAY_CODES, code="summary", display="Social prescribing summary")
            ]
        ),
        subject=subject,
        basedOn=[Reference(reference=request_url)],
        effectiveDateTime=view.milestones[-1].at,
        component=components,
    )
