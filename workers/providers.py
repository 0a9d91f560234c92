"""The inbound provider consumer: Tier Two providers' responses and attendance reports.

Each message is validated against the catalogue, checked against the handoff it names,
deduplicated by event id and signalled to the referral's workflow
(``provider_responded`` / ``attendance_reported``); only then is it recorded as processed
and its offset committed. Invalid or unauthorised messages are dead-lettered with the
reason; a failure to reach Temporal or the database is retried, never dead-lettered.

Facts for different referrals are handled at once (up to ``CONCURRENCY`` referrals from
each poll), each referral's in the order they were sent; a poll's offsets commit only
when every fact in it has been applied and recorded, or dead-lettered
(``messaging.consumer``: batches). One referral's facts never overlap, which the workflow
also relies on: it can continue as new only between them.

A poll costs the database two transactions, not two per fact (``ProviderInbound.prepare``,
the consumer's batch hook): every readable message is read once and all their event ids
and handoffs are screened in one transaction before the lanes start; the facts the
batch signalled are recorded as processed in one transaction after the lanes finish
(failed or not) and before the offsets commit (``inbound.provider_facts.FactBatch``).

Who may speak for a handoff: the handoff must exist, belong to the event's referral and
have been made to the event's ``provider_id``, and the CloudEvents ``source`` must be
``urn:linkway:provider:<provider_id>`` for that same provider. ``source`` is only what the
sender claims: in production, Kafka ACLs and SASL principals must bind each provider's
credentials to its own source (a provider may write only events whose source names it,
e.g. through a per-provider gateway or a principal-to-source check at the edge). The
check here is the second line of defence, not the first.

Everything after validating the message (deduplicate, authorise against the handoff,
signal, record) is ``inbound.provider_facts``, shared with the HTTP API for providers
without Kafka (which screens and records per request), so both doors give the same
result. The workflow also ignores a fact whose event id it has seen, so a crash between
the batch's signals and its processed-event commit redelivers the batch and applies
nothing twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Hashable, Sequence

from faststream.kafka import KafkaBroker
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from temporalio.client import Client

from events import catalogue, provider, topics
from events.catalogue import EventRejected
from inbound.provider_facts import (
    CONSUMER,
    Fact,
    FactBatch,
    ProviderEvent,
    ProviderFacts,
    to_fact,
)
from infra.db import get_engine
from infra.health import Health
from infra.settings import Settings
from messaging.consumer import Backoff, Inbound, make_broker, subscribe, watch

GROUP_ID = "linkway.providers"
SOURCE_PREFIX = "urn:linkway:provider:"
# Referrals handled at once from one poll; each referral's facts in order, one at a time.
CONCURRENCY = 16


def referral_of(message: Inbound) -> Hashable:
    """The ordering key: the referral the event is about (its ``subject``, which the
    contract makes the Kafka key too; the subject is what the handler checks), so one
    referral's facts are signalled in the order they were sent whatever key a partner
    used. An unreadable message keeps its Kafka key (it will be dead-lettered)."""
    subject = json.loads(message.value).get("subject")
    return ("referral", subject) if isinstance(subject, str) else message.key


class ProviderInbound:
    """The handler: validate the event and its envelope, then hand the fact to
    ``ProviderFacts`` (deduplicate, authorise, signal, record), as the HTTP API does; a
    polled batch goes through ``prepare`` to one ``FactBatch`` (module docstring)."""

    def __init__(self, client: Client, engine: Engine, topic_prefix: str = "") -> None:
        self.facts = ProviderFacts(client, engine)
        # Each topic accepts its own type only: a response sent to the attendance topic is
        # as wrong as a malformed one.
        self.allowed = {
            topic_prefix + topics.PROVIDER_RESPONSES: frozenset({provider.ProviderResponse.TYPE}),
            topic_prefix + topics.PROVIDER_ATTENDANCE: frozenset(
                {provider.AttendanceReported.TYPE}
            ),
        }

    @property
    def topic_names(self) -> list[str]:
        return list(self.allowed)

    def read(self, message: Inbound) -> tuple[Fact, ProviderEvent]:
        """The fact a message carries and its data; ``EventRejected`` if it carries none
        this provider may send."""
        envelope, data = catalogue.parse(message.value, self.allowed[message.topic])
        assert isinstance(data, ProviderEvent)
        if envelope.subject != data.referral_id:
            raise EventRejected("bad envelope: subject must be the referral_id")
        if envelope.source != SOURCE_PREFIX + data.provider_id:
            raise EventRejected(
                f"unauthorised: source must be {SOURCE_PREFIX}<provider_id> for provider_id "
                f"{data.provider_id}"
            )
        try:
            fact = to_fact(envelope.id, data)
        except ValidationError:
            # Only the envelope's id can fail here: the data's ids have the facts' pattern already.
            raise EventRejected("bad envelope: id must be letters, digits and _.:-") from None
        return fact, data

    async def __call__(self, message: Inbound) -> None:
        await self.facts.submit(*self.read(message))

    async def prepare(self, messages: Sequence[Inbound]) -> ProviderBatch:
        """Read the batch's messages once, and screen the facts of those that are readable
        in one transaction; the others are rejected when their lane reaches them."""
        readable: dict[Position, tuple[Fact, ProviderEvent]] = {}
        for message in messages:
            try:
                readable[_position(message)] = self.read(message)
            except Exception:  # its lane reads it again, and rejects it
                continue
        batch = await FactBatch.screen(self.facts, list(readable.values()))
        return ProviderBatch(self, readable, batch)


Position = tuple[str, int, int]


def _position(message: Inbound) -> Position:
    return message.topic, message.partition, message.offset


class ProviderBatch:
    """One polled batch (``messaging.consumer.BatchScope``): each record's fact applied
    through the batch's ``FactBatch``; at the end, the facts it signalled recorded in one
    transaction, before the batch's offsets commit."""

    def __init__(
        self,
        handler: ProviderInbound,
        readable: dict[Position, tuple[Fact, ProviderEvent]],
        facts: FactBatch,
    ) -> None:
        self.handler = handler
        self.readable = readable
        self.facts = facts

    async def __call__(self, message: Inbound) -> None:
        read = self.readable.get(_position(message))
        await self.facts.submit(*(read or self.handler.read(message)))

    async def finish(self) -> None:
        await self.facts.record()


def build(
    settings: Settings,
    client: Client,
    engine: Engine,
    *,
    topic_prefix: str = "",
    group_id: str = GROUP_ID,
    backoff: Backoff | None = None,
) -> KafkaBroker:
    """The consumer as a faststream broker: ``await broker.start()`` / ``broker.stop()``.

    ``topic_prefix`` and ``group_id`` let tests run beside each other on one broker.
    """
    broker = make_broker(settings, client_id=f"linkway-{CONSUMER}")
    handler = ProviderInbound(client, engine, topic_prefix)
    subscribe(
        broker,
        name=CONSUMER,
        topics=handler.topic_names,
        handler=handler,
        group_id=group_id,
        backoff=backoff,
        concurrency=CONCURRENCY,
        order_key=referral_of,
    )
    return broker


async def run(settings: Settings, health: Health | None = None) -> None:
    """Consume provider responses and attendance until cancelled."""
    from infra import temporal

    client = await temporal.connect(settings)
    engine = get_engine(settings)
    broker = build(settings, client, engine)
    await broker.start()
    watching = asyncio.create_task(watch(broker, health or Health(CONSUMER)))
    try:
        await asyncio.Event().wait()
    finally:
        watching.cancel()
        await broker.stop()
