"""What the provider routes share (``api.providers``, ``api.provider_attendance``): the
caller's role, the handoff a provider may see, and submitting a provider's fact through
``inbound.provider_facts``, the same code the Kafka door uses."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from activities.readmodel import HandoffRow
from api.auth import Caller, require
from api.deps import deps
from api.problems import Problem, responses
from api.provider_schemas import Submitted
from inbound.provider_facts import (
    FactRefused,
    ImplausibleDate,
    ProviderEvent,
    ProviderFacts,
    to_fact,
)

TierTwo = Annotated[Caller, Depends(require("tier_two"))]
# What a provider's report may answer besides its 202.
ACCEPTED = responses(400, 401, 403, 404, 413, 422, 429)


def facts_of(request: Request) -> ProviderFacts:
    d = deps(request)
    return ProviderFacts(d.client, d.engine)


def not_found() -> Problem:
    return Problem(404, "Not found", "no handoff with that id is visible to you")


async def handoff_of(facts: ProviderFacts, caller: Caller, handoff_id: str) -> HandoffRow:
    try:
        return await asyncio.to_thread(facts.handoff, caller.partner_id, handoff_id)
    except FactRefused:
        raise not_found() from None


async def submit(facts: ProviderFacts, event_id: str, data: ProviderEvent) -> Submitted:
    try:
        applied = await facts.submit(to_fact(event_id, data), data)
    except FactRefused:  # the handoff changed hands between the read and the submit
        raise not_found() from None
    except ImplausibleDate as exc:  # checked before; reached only across a midnight
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "session_date"), "msg": str(exc)}]
        ) from None
    return Submitted(event_id=event_id, duplicate=not applied)
