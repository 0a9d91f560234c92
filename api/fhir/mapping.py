"""Between FHIR resources and Linkway's own shapes, both ways, for the facade.

- A ``ServiceRequest`` a partner posts becomes the body of ``POST /referrals``
  (``schemas.ReferralRequest``); the person comes as a contained ``Patient``. Every
  element Linkway reads is listed in docs/fhir.md; an element it cannot read as
  required is a field error naming the element.
- A referral is served back as a ``ServiceRequest`` with no personal data: its subject
  is the pseudonymous referral id, never a Patient.
- A handoff is a ``Task`` (Gravity SDOH Clinical Care: the statuses are the same), and a
  provider's update of a Task's status becomes the provider's answer it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task, TaskOutput
from pydantic import ValidationError

from activities.readmodel import HandoffRow, ReferralRow
from api import schemas
from api.fhir import (
    HANDOFF_ID,
    LINKWAY_DELIVERED,
    LINKWAY_REASONS,
    NHS_NUMBER,
    PARTNER_ID,
    REFERRAL_ID,
    SERVICE_ID,
)
from api.fhir.message_back import SERVICE_REQUEST_STATUS
from events.provider import ProviderDecision
from pathway.referrer import REFERRAL_TO_SOCIAL_PRESCRIBING, SNOMED, ReferrerView

LOCALITY = "urn:linkway:locality"
SOURCE = "urn:linkway:codesystem:referral-source"
CONSENT = "urn:linkway:extension:consent-to-share"
SESSIONS = "sessions-delivered"
DELIVERED = "delivered"
WAITLIST_BANDS = "urn:linkway:codesystem:waitlist-band"


def invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": tuple(field.split(".")), "msg": message}]
    )


def _code(concepts: list[CodeableConcept] | None, system: str) -> str | None:
    for concept in concepts or []:
        for coding in concept.coding or []:
            if coding.system == system and coding.code:
                return coding.code
    return None


def parse(raw: bytes, model: type[Any], name: str) -> Any:
    """A resource of ``model``'s type from JSON, or field errors naming its elements."""
    try:
        resource = model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {
                    "type": e["type"],
                    "loc": (name, *(str(p) for p in e["loc"] if not isinstance(p, int))),
                    "msg": e["msg"],
                }
                for e in exc.errors(include_input=False, include_url=False)[:10]
            ]
        ) from None
    except ValueError:
        raise invalid(name, f"is not a FHIR {name} in JSON") from None
    return resource


def referral_request(sr: ServiceRequest) -> schemas.ReferralRequest:
    """The body of ``POST /referrals`` a ServiceRequest stands for."""
    if sr.status != "active" or sr.intent not in ("order", "original-order"):
        raise invalid("ServiceRequest.status", "a new referral is status active, intent order")
    if _code([sr.code] if sr.code else None, SNOMED) != REFERRAL_TO_SOCIAL_PRESCRIBING[0]:
        raise invalid(
            "ServiceRequest.code",
            f"must be SNOMED CT {REFERRAL_TO_SOCIAL_PRESCRIBING[0]} "
            f"({REFERRAL_TO_SOCIAL_PRESCRIBING[1]})",
        )
    locality = _code(sr.locationCode, LOCALITY)
    if locality is None:
        raise invalid("ServiceRequest.locationCode", f"needs a coding with system {LOCALITY}")
    source = _code(sr.category, SOURCE) or "gp"
    requester = sr.requester.identifier if sr.requester else None
    if requester is None or not requester.value:
        raise invalid("ServiceRequest.requester", "needs an identifier: the referring organisation")
    consent = next((e.valueBoolean for e in sr.extension or [] if e.url == CONSENT), None)
    if consent is None:
        raise invalid("ServiceRequest.extension", f"needs {CONSENT} with valueBoolean")
    patient: Any = next((c for c in sr.contained or [] if c.get_resource_type() == "Patient"), None)
    if patient is None or sr.subject is None or sr.subject.reference != f"#{patient.id}":
        raise invalid("ServiceRequest.subject", "must reference a contained Patient (#id)")
    name = (patient.name or [None])[0]
    if name is None or not name.family or not name.given:
        raise invalid("ServiceRequest.contained.Patient.name", "needs a family and a given name")
    telecom = {t.system: t.value for t in patient.telecom or [] if t.value}
    person = {
        "given_name": name.given[0],
        "family_name": name.family,
        "nhs_number": next(
            (i.value for i in patient.identifier or [] if i.system == NHS_NUMBER), None
        ),
        # A partial date ("1980") is FHIR but not a date of birth Linkway can keep: 422.
        "date_of_birth": str(patient.birthDate) if patient.birthDate else None,
        "phone": telecom.get("phone"),
        "email": telecom.get("email"),
        "address": (patient.address or [None])[0].text if patient.address else None,
    }
    body = {
        "locality": locality,
        "source": source,
        "referrer_org_id": requester.value,
        "reason_codes": [
            c.code
            for concept in sr.reasonCode or []
            for c in concept.coding or []
            if c.system == LINKWAY_REASONS and c.code
        ],
        "consent_to_share": consent,
        "person": {k: v for k, v in person.items() if v is not None},
    }
    try:
        return schemas.ReferralRequest.model_validate(body)
    except ValidationError as exc:
        where = {
            "locality": "ServiceRequest.locationCode",
            "source": "ServiceRequest.category",
            "referrer_org_id": "ServiceRequest.requester.identifier",
            "reason_codes": "ServiceRequest.reasonCode",
            "person": "ServiceRequest.contained.Patient",
        }
        raise RequestValidationError(
            [
                {
                    "type": e["type"],
                    "loc": (
                        *where.get(str(e["loc"][0]), "ServiceRequest").split("."),
                        *map(str, e["loc"][1:]),
                    ),
                    "msg": e["msg"],
                }
                for e in exc.errors(include_input=False, include_url=False)
            ]
        ) from None


def service_request(row: ReferralRow, view: ReferrerView) -> ServiceRequest:
    """A referral as a ServiceRequest: codes and pseudonymous ids only."""
    return ServiceRequest(
        id=row.referral_id,
        identifier=[Identifier(system=REFERRAL_ID, value=row.referral_id)],
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
        subject=Reference(identifier=Identifier(system=REFERRAL_ID, value=row.referral_id)),
        locationCode=[CodeableConcept(coding=[Coding(system=LOCALITY, code=row.locality)])],
        authoredOn=_utc(row.opened_at),
        performer=[Reference(identifier=Identifier(system=PARTNER_ID, value=row.partner_id))],
    )


def task(row: HandoffRow) -> Task:
    """A handoff as the provider's Task."""
    reason = (
        Coding(system=LINKWAY_REASONS, code=row.reason_code)
        if row.reason_code
        else Coding(system=WAITLIST_BANDS, code=row.waitlist_band)
        if row.waitlist_band
        else None
    )
    return Task(
        id=row.handoff_id,
        identifier=[Identifier(system=HANDOFF_ID, value=row.handoff_id)],
        status=row.status,
        intent="order",
        focus=Reference(reference=f"ServiceRequest/{row.referral_id}"),
        for_fhir=Reference(identifier=Identifier(system=REFERRAL_ID, value=row.referral_id)),
        owner=Reference(identifier=Identifier(system=PARTNER_ID, value=row.provider_id)),
        code=CodeableConcept(coding=[Coding(system=SERVICE_ID, code=row.service_id)]),
        authoredOn=_utc(row.requested_at),
        lastModified=_utc(row.updated_at or row.requested_at),
        statusReason=CodeableConcept(coding=[reason]) if reason else None,
        output=_delivered(row),
    )


def _utc(at: datetime) -> datetime:
    """The read model hands times back naive on SQLite; they are UTC, and FHIR says so."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _delivered(row: HandoffRow) -> list[TaskOutput] | None:
    delivered = row.delivered_code
    if row.status != "completed" or not delivered:
        return None
    outputs = [
        TaskOutput(
            type=CodeableConcept(text=DELIVERED),
            valueCodeableConcept=CodeableConcept(
                coding=[Coding(system=LINKWAY_DELIVERED, code=delivered)]
            ),
        )
    ]
    sessions = row.sessions_delivered
    if sessions is not None:
        outputs.append(TaskOutput(type=CodeableConcept(text=SESSIONS), valueInteger=sessions))
    return outputs


@dataclass(frozen=True)
class Answer:
    """A provider's answer a Task update stands for (``api.providers`` sends it)."""

    decision: ProviderDecision
    reason_code: str | None = None
    waitlist_band: str | None = None
    delivered_code: str | None = None
    sessions_delivered: int | None = None


def answer(update: Task) -> Answer:
    """What a provider's Task update means: a status, with a reason or an output."""
    status = update.status
    reasons = [update.statusReason] if update.statusReason else None
    if status == "accepted":
        return Answer("accept")
    if status == "in-progress":
        return Answer("start")
    if status == "rejected":
        reason = _code(reasons, LINKWAY_REASONS)
        if reason is None:
            raise invalid("Task.statusReason", f"a rejection needs a {LINKWAY_REASONS} coding")
        return Answer("reject", reason_code=reason)
    if status == "on-hold":
        band = _code(reasons, WAITLIST_BANDS)
        if band not in ("under_1_month", "1_to_3_months", "over_3_months"):
            raise invalid(
                "Task.statusReason", f"on-hold needs the expected wait ({WAITLIST_BANDS})"
            )
        return Answer("waitlist", waitlist_band=band)
    if status == "completed":
        delivered, sessions = None, None
        for out in update.output or []:
            if out.type.text == DELIVERED and out.valueCodeableConcept is not None:
                delivered = _code([out.valueCodeableConcept], LINKWAY_DELIVERED)
            if out.type.text == SESSIONS and out.valueInteger is not None:
                sessions = out.valueInteger
        if delivered is None:
            raise invalid(
                "Task.output", f"completed needs what was delivered ({LINKWAY_DELIVERED})"
            )
        return Answer("complete", delivered_code=delivered, sessions_delivered=sessions)
    raise invalid(
        "Task.status",
        "a provider sets accepted, in-progress, rejected, on-hold or completed",
    )
