"""Linkway's public contract, as the provider tool speaks it: topics, the CloudEvents it
sends (structured mode, ``source`` = ``urn:linkway:provider:<id>``, key = referral id),
their ids, and the handoff requests it reads.

Event ids are derived from what a report says (a UUID 5 under Linkway's published
namespace), exactly as Linkway derives them for reports made over HTTP: sending the same
report again, by either door, is recognised as the same report and applied once.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

RESPONSES_TOPIC = "linkway.provider.responses"
ATTENDANCE_TOPIC = "linkway.provider.attendance"
HANDOFFS_PREFIX = "linkway.handoffs."
RESPONSE_TYPE = "linkway.provider.response.v1"
ATTENDANCE_TYPE = "linkway.provider.attendance.v1"
HANDOFF_REQUESTED_TYPE = "linkway.handoff.requested.v1"
HANDOFF_UPDATED_TYPE = "linkway.handoff.updated.v1"
# A handoff in one of these is over: stop work on it and report nothing more.
FINISHED = ("cancelled", "failed", "completed", "rejected")
CONTENT_TYPE_HEADER = ("content-type", b"application/cloudevents+json; charset=UTF-8")
EVENT_ID_NAMESPACE = uuid.UUID("6f1c4c1e-3f57-4c8e-9a53-2a1f0c7d5b10")

DECISIONS = ("accept", "start", "reject", "waitlist", "complete")
WAITLIST_BANDS = ("under_1_month", "1_to_3_months", "over_3_months")
STATUSES = ("attended", "did_not_attend", "cancelled_by_person", "cancelled_by_provider")
PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
REF = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CODE = re.compile(r"^[a-z0-9_.-]{1,64}$")


class ContractError(ValueError):
    """A report Linkway would refuse; ``str()`` says why."""


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    event_id: str


@dataclass(frozen=True)
class Handoff:
    handoff_id: str
    referral_id: str
    episode: int
    service_id: str
    support_level: str
    respond_by: str
    requested_at: str


@dataclass(frozen=True)
class HandoffUpdate:
    """A status change of one of this provider's handoffs (``linkway.handoff.updated.v1``)."""

    handoff_id: str
    referral_id: str
    episode: int
    status: str
    reason_code: str | None
    delivered_code: str | None
    sessions_delivered: int | None
    occurred_at: str

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def handoffs_topic(provider_id: str) -> str:
    if not PROVIDER_ID.match(provider_id):
        raise ContractError("a provider id is lower-case letters, digits and hyphens")
    return HANDOFFS_PREFIX + provider_id


def response_event_id(
    provider_id: str, handoff_id: str, decision: str, reason: str | None, band: str | None
) -> str:
    """For ``complete``, pass what was delivered as ``reason`` and the sessions held (as
    text, or None) as ``band``: Linkway derives a completion's id the same way."""
    parts = ["response", provider_id, handoff_id, decision, reason or "", band or ""]
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "|".join(parts)))


def attendance_event_id(provider_id: str, handoff_id: str, session_date: date, status: str) -> str:
    parts = ["attendance", provider_id, handoff_id, session_date.isoformat(), status]
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "|".join(parts)))


def response(
    provider_id: str,
    handoff_id: str,
    referral_id: str,
    decision: str,
    reason_code: str | None = None,
    waitlist_band: str | None = None,
    delivered_code: str | None = None,
    sessions_delivered: int | None = None,
) -> Outgoing:
    _check_ids(provider_id, handoff_id, referral_id)
    if decision not in DECISIONS:
        raise ContractError(f"decision must be one of {', '.join(DECISIONS)}")
    if (decision == "complete") != bool(delivered_code):
        raise ContractError("a completion, and only a completion, needs what was delivered")
    if delivered_code and not CODE.match(delivered_code):
        raise ContractError("what was delivered is a code: lower-case letters, digits and _.-")
    if sessions_delivered is not None and (
        decision != "complete" or not 0 <= sessions_delivered <= 1000
    ):
        raise ContractError("sessions delivered go with a completion only, 0 to 1000")
    if (decision == "reject") != bool(reason_code):
        raise ContractError("a rejection, and only a rejection, needs a reason code")
    if reason_code and not CODE.match(reason_code):
        raise ContractError("a reason code is lower-case letters, digits and _.- (e.g. full)")
    if (decision == "waitlist") != bool(waitlist_band):
        raise ContractError("a waitlist answer, and only one, needs a waitlist band")
    if waitlist_band and waitlist_band not in WAITLIST_BANDS:
        raise ContractError(f"the waitlist band must be one of {', '.join(WAITLIST_BANDS)}")
    data: dict[str, Any] = {"decision": decision}
    if reason_code:
        data["reason_code"] = reason_code
    if waitlist_band:
        data["waitlist_band"] = waitlist_band
    if delivered_code:
        data["delivered_code"] = delivered_code
    if sessions_delivered is not None:
        data["sessions_delivered"] = sessions_delivered
    sessions = None if sessions_delivered is None else str(sessions_delivered)
    event_id = response_event_id(
        provider_id,
        handoff_id,
        decision,
        reason_code or delivered_code,
        waitlist_band or sessions,
    )
    return _event(
        RESPONSES_TOPIC, RESPONSE_TYPE, event_id, provider_id, handoff_id, referral_id, data
    )


def attendance(
    provider_id: str, handoff_id: str, referral_id: str, session_date: date, status: str
) -> Outgoing:
    _check_ids(provider_id, handoff_id, referral_id)
    if status not in STATUSES:
        raise ContractError(f"status must be one of {', '.join(STATUSES)}")
    event_id = attendance_event_id(provider_id, handoff_id, session_date, status)
    data = {"session_date": session_date.isoformat(), "status": status}
    return _event(
        ATTENDANCE_TOPIC, ATTENDANCE_TYPE, event_id, provider_id, handoff_id, referral_id, data
    )


def read_handoff(value: bytes, provider_id: str) -> Handoff | None:
    """A handoff request made to this provider, or None for anything else on the topic
    (another event type, a later version: a tolerant reader skips what it does not know)."""
    try:
        event = json.loads(value)
        data = event["data"]
        if event.get("type") != HANDOFF_REQUESTED_TYPE or data["provider_id"] != provider_id:
            return None
        return Handoff(
            handoff_id=str(data["handoff_id"]),
            referral_id=str(data["referral_id"]),
            episode=int(data["episode"]),
            service_id=str(data["service_id"]),
            support_level=str(data.get("support_level", "")),
            respond_by=str(data["respond_by"]),
            requested_at=str(data["occurred_at"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def read_update(value: bytes, provider_id: str) -> HandoffUpdate | None:
    """A status change of a handoff made to this provider, or None for anything else."""
    try:
        event = json.loads(value)
        data = event["data"]
        if event.get("type") != HANDOFF_UPDATED_TYPE or data["provider_id"] != provider_id:
            return None
        sessions = data.get("sessions_delivered")
        return HandoffUpdate(
            handoff_id=str(data["handoff_id"]),
            referral_id=str(data["referral_id"]),
            episode=int(data["episode"]),
            status=str(data["status"]),
            reason_code=data.get("reason_code") and str(data["reason_code"]),
            delivered_code=data.get("delivered_code") and str(data["delivered_code"]),
            sessions_delivered=None if sessions is None else int(sessions),
            occurred_at=str(data["occurred_at"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _check_ids(provider_id: str, handoff_id: str, referral_id: str) -> None:
    handoffs_topic(provider_id)
    for name, value in (("handoff id", handoff_id), ("referral id", referral_id)):
        if not REF.match(value):
            raise ContractError(f"the {name} {value!r} is not a Linkway id")


def _event(
    topic: str,
    type_: str,
    event_id: str,
    provider_id: str,
    handoff_id: str,
    referral_id: str,
    data: dict[str, Any],
) -> Outgoing:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "source": f"urn:linkway:provider:{provider_id}",
        "type": type_,
        "subject": referral_id,
        "time": now,
        "datacontenttype": "application/json",
        "data": {
            "handoff_id": handoff_id,
            "referral_id": referral_id,
            "provider_id": provider_id,
            **data,
            "occurred_at": now,
        },
    }
    return Outgoing(topic, referral_id.encode(), json.dumps(envelope).encode(), event_id)
