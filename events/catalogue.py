"""The event catalogue: every event type, its version, its data model and its topic.

A registry maps ``type`` to a pydantic model. Parsing an unknown type or version, or
data that does not fit its model, raises ``EventRejected`` with a reason a partner can
act on; it never crashes a consumer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from events.envelope import CloudEvent

MAX_EVENT_BYTES = 64 * 1024

# Field names that would carry personal data. Inbound events naming one are dead-lettered
# with this reason, and a test checks no catalogue schema contains one.
PERSONAL_DATA_FIELDS = frozenset(
    {
        "name",
        "given_name",
        "family_name",
        "full_name",
        "first_name",
        "last_name",
        "surname",
        "nhs_number",
        "nhs_no",
        "date_of_birth",
        "dob",
        "birth_date",
        "address",
        "postcode",
        "phone",
        "telephone",
        "mobile",
        "email",
        "notes",
        "free_text",
    }
)


class EventRejected(ValueError):
    """An event that cannot be accepted; ``str()`` is the reason recorded with it."""


class EventData(BaseModel):
    """Base of every event's ``data``: strict, so an extra field is an error, not noise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    SUMMARY: ClassVar[str]


E = TypeVar("E", bound=type[EventData])

_REGISTRY: dict[str, type[EventData]] = {}


def event_type(type_: str, topic: str, summary: str) -> Callable[[E], E]:
    """Register a data model under its versioned type name."""

    def register(cls: E) -> E:
        if type_ in _REGISTRY:
            raise RuntimeError(f"event type {type_} registered twice")
        cls.TYPE, cls.TOPIC, cls.SUMMARY = type_, topic, summary
        _REGISTRY[type_] = cls
        return cls

    return register


def topic_for(data: EventData) -> str:
    """The topic an event goes to. Handoff requests go to the provider's own topic: the
    template names the field."""
    return data.TOPIC.format(**data.model_dump())


def registry() -> dict[str, type[EventData]]:
    _load_all()
    return dict(_REGISTRY)


def model_for(type_: str) -> type[EventData]:
    _load_all()
    try:
        return _REGISTRY[type_]
    except KeyError:
        family = type_.rsplit(".v", 1)[0]
        known = sorted(t for t in _REGISTRY if t.rsplit(".v", 1)[0] == family)
        if known:
            raise EventRejected(
                f"unsupported version of {family}: got {type_}, accepted {', '.join(known)}"
            ) from None
        raise EventRejected(f"unknown event type {type_!r}") from None


def parse(raw: bytes, allowed_types: frozenset[str] | None = None) -> tuple[CloudEvent, EventData]:
    """Validate raw bytes as a catalogue event; raise ``EventRejected`` with the reason."""
    if len(raw) > MAX_EVENT_BYTES:
        raise EventRejected(f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventRejected(f"not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    if not isinstance(body, dict):
        raise EventRejected("an event must be a JSON object (CloudEvents structured mode)")
    personal = _personal_fields(body)
    if personal:
        raise EventRejected(
            f"field {personal!r} is personal data and must not be sent in an event; "
            "send the pseudonymous ids only"
        )
    try:
        envelope = CloudEvent.model_validate(body)
    except ValidationError as exc:
        raise EventRejected(f"bad envelope: {_first_error(exc)}") from None
    if allowed_types is not None and envelope.type not in allowed_types:
        if envelope.type not in registry():
            model_for(envelope.type)  # raises the unknown-type or wrong-version reason
        raise EventRejected(f"event type {envelope.type} is not accepted on this topic")
    model = model_for(envelope.type)
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise EventRejected(f"bad data for {envelope.type}: {_first_error(exc)}") from None
    return envelope, data


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {err['msg']}"


def _personal_fields(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if str(key).lower() in PERSONAL_DATA_FIELDS:
                return str(key)
            found = _personal_fields(inner)
            if found:
                return found
    elif isinstance(value, list):
        for inner in value:
            found = _personal_fields(inner)
            if found:
                return found
    return None


def _load_all() -> None:
    # Importing the modules registers their models; kept here so ``parse`` sees them all.
    from events import (  # noqa: F401
        casework,
        completion,
        fund,
        handoff,
        outcome,
        payment,
        provider,
        referral,
    )
