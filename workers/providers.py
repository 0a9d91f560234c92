"""The inbound provider consumer: Tier Two providers' responses and attendance reports.

Each message is validated against the catalogue, checked against the handoff it names,
deduplicated by event id and signalled to the referral's workflow
(``provider_responded`` / ``attendance_reported``); only then is it recorded as processed
and its offset committed. Invalid or unauthorised messages are dead-lettered with the
reason; a failure to reach Temporal or the database is retried, never dead-lettered.

Who may speak for a handoff: the handoff must exist, belong to the event's referral and
have been made to the event's ``provider_id``, and the CloudEvents ``source`` must be
``urn:linkway:provider:<provider_id>`` for that same provider. ``source`` is only what the
sender claims: in production, Kafka ACLs and SASL principals must bind each provider's
credentials to its own source (a provider may write only events whose source names it,
e.g. through a per-provider gateway or a principal-to-source check at the edge). The
check here is the second line of defence, not the first.

The workflow also ignores a fact whose event id it has seen, so a crash between the
signal and the processed-event commit applies nothing twice.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from faststream.kafka import KafkaBroker
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from temporalio.client import Client

from events import catalogue, provider, topics
from events.catalogue import EventRejected
from events.consumer import Backoff, Inbound, is_processed, make_broker, record_processed, subscribe
from events.envelope import CloudEvent
from infra.db import create_tables, get_engine, transaction
from infra.readmodel import HandoffRow
from infra.settings import Settings
from pathway import commands as cmd
from workflows import referral_workflow_id
from workflows.referral import ReferralWorkflow

CONSUMER = "providers"
GROUP_ID = "linkway.providers"
SOURCE_PREFIX = "urn:linkway:provider:"
SIGNAL_TIMEOUT = timedelta(seconds=10)

ProviderEvent = provider.ProviderResponse | provider.AttendanceReported


class ProviderInbound:
    """The handler: validate, authorise, deduplicate, signal, record."""

    def __init__(self, client: Client, engine: Engine, topic_prefix: str = "") -> None:
        self.client = client
        self.engine = engine
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

    async def __call__(self, message: Inbound) -> None:
        envelope, data = catalogue.parse(message.value, self.allowed[message.topic])
        assert isinstance(data, ProviderEvent)
        fact = _fact(envelope, data)
        if await asyncio.to_thread(self._processed, envelope.id):
            return
        await asyncio.to_thread(self._authorise, envelope, data)
        handle = self.client.get_workflow_handle_for(
            ReferralWorkflow.run, referral_workflow_id(data.referral_id)
        )
        if isinstance(fact, cmd.ProviderResponded):
            await handle.signal(
                ReferralWorkflow.provider_responded, fact, rpc_timeout=SIGNAL_TIMEOUT
            )
        else:
            await handle.signal(
                ReferralWorkflow.attendance_reported, fact, rpc_timeout=SIGNAL_TIMEOUT
            )
        await asyncio.to_thread(self._record, envelope.id)

    def _processed(self, event_id: str) -> bool:
        with transaction(self.engine) as session:
            return is_processed(session, CONSUMER, event_id)

    def _record(self, event_id: str) -> None:
        with transaction(self.engine) as session:
            record_processed(session, CONSUMER, event_id)

    def _authorise(self, envelope: CloudEvent, data: ProviderEvent) -> None:
        if envelope.source != SOURCE_PREFIX + data.provider_id:
            raise EventRejected(
                f"unauthorised: source must be {SOURCE_PREFIX}<provider_id> for provider_id "
                f"{data.provider_id}"
            )
        with transaction(self.engine) as session:
            handoff = session.get(HandoffRow, data.handoff_id)
        if handoff is None:
            raise EventRejected(f"unknown handoff {data.handoff_id}")
        if handoff.referral_id != data.referral_id:
            raise EventRejected(
                f"unauthorised: handoff {data.handoff_id} is not part of referral "
                f"{data.referral_id}"
            )
        if handoff.provider_id != data.provider_id:
            raise EventRejected(
                f"unauthorised: handoff {data.handoff_id} was not made to provider "
                f"{data.provider_id}"
            )


def _fact(
    envelope: CloudEvent, data: ProviderEvent
) -> cmd.ProviderResponded | cmd.AttendanceRecorded:
    if envelope.subject != data.referral_id:
        raise EventRejected("bad envelope: subject must be the referral_id")
    common = {
        "event_id": envelope.id,
        "handoff_id": data.handoff_id,
        "provider_id": data.provider_id,
        "occurred_at": data.occurred_at,
    }
    try:
        if isinstance(data, provider.ProviderResponse):
            return cmd.ProviderResponded(
                **common,
                decision=data.decision,
                reason_code=data.reason_code,
                waitlist_band=data.waitlist_band,
            )
        return cmd.AttendanceRecorded(**common, session_date=data.session_date, status=data.status)
    except ValidationError:
        # Only the envelope's id can fail here: the data's ids have the facts' pattern already.
        raise EventRejected("bad envelope: id must be letters, digits and _.:-") from None


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
    )
    return broker


async def run(settings: Settings) -> None:
    """Consume provider responses and attendance until cancelled."""
    from infra import temporal

    client = await temporal.connect(settings)
    engine = get_engine(settings)
    create_tables(engine)
    broker = build(settings, client, engine)
    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.stop()
