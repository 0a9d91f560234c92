"""The payment engine's consumer: outcome facts become claims in the ledger.

Each outcome event is decided under every contract that pays its partner, and the
claims, the ledger entries, the payment events (outbox) and the processed-event record
commit in one transaction before the offset is committed. Re-entries are read from the
lifecycle topic so that the rate card's re-entry window counts from the episode's start.
"""

from __future__ import annotations

import asyncio
import logging

from faststream.kafka import KafkaBroker
from opentelemetry import metrics
from sqlalchemy.engine import Engine

from events import topics
from events.catalogue import parse
from events.outcome import OUTCOME_TYPES, OutcomeEvent
from events.referral import ReferralReentered
from infra.db import get_engine, transaction
from infra.health import Health
from infra.settings import PaymentSettings, Settings
from messaging.consumer import (
    Backoff,
    Inbound,
    is_processed,
    make_broker,
    record_processed,
    subscribe,
    watch,
)
from payments.engine import PaymentEngine
from payments.rules import ClaimDecision

log = logging.getLogger("linkway.payments")

CONSUMER = "payments"
GROUP_ID = "linkway.payments"
# Only outcome facts are accepted on the outcomes topic; anything else is dead-lettered.
ON_OUTCOMES_TOPIC = frozenset(OUTCOME_TYPES)


_meter = metrics.get_meter("linkway.payments")
CLAIMS = _meter.create_counter(
    "linkway.claims",
    unit="{claim}",
    description="Outcome decisions by rate-card metric and status (claimed, capped, not eligible)",
)
CLAIM_PENCE = _meter.create_counter(
    "linkway.claims.pence",
    unit="{pence}",
    description="Pence claimed, by rate-card metric and status",
)


class OutcomeConsumer:
    """Applies one record; raising ``EventRejected`` dead-letters it, anything else retries."""

    def __init__(self, engine: Engine, payments: PaymentEngine) -> None:
        self.engine = engine
        self.payments = payments

    async def __call__(self, inbound: Inbound) -> None:
        await asyncio.to_thread(self._apply, inbound)

    def _apply(self, inbound: Inbound) -> None:
        allowed = ON_OUTCOMES_TOPIC if inbound.topic == topics.OUTCOMES else None
        envelope, data = parse(inbound.value or b"", allowed_types=allowed)
        if inbound.topic == topics.REFERRALS and not isinstance(data, ReferralReentered):
            return  # the rest of the lifecycle does not move money
        decisions: list[ClaimDecision] = []
        with transaction(self.engine) as session:
            if is_processed(session, CONSUMER, envelope.id):
                return
            if isinstance(data, OutcomeEvent):
                decisions = self.payments.handle_outcome(session, envelope, data)
            elif isinstance(data, ReferralReentered):
                self.payments.handle_reentry(session, envelope, data)
            record_processed(session, CONSUMER, envelope.id)
        # Counted after the commit, so a rolled-back attempt (retried later) counts once.
        for decision in decisions:
            metric = decision.key.metric if decision.key else "none"
            attributes = {"metric": metric, "status": decision.status}
            CLAIMS.add(1, attributes)
            CLAIM_PENCE.add(decision.amount_pence, attributes)
        self.payments.checkpoint_if_due()


def build(
    settings: Settings,
    engine: Engine,
    payments: PaymentEngine,
    *,
    group_id: str = GROUP_ID,
    backoff: Backoff | None = None,
) -> KafkaBroker:
    broker = make_broker(settings, client_id=f"linkway-{CONSUMER}")
    subscribe(
        broker,
        name=CONSUMER,
        topics=[topics.OUTCOMES, topics.REFERRALS],
        handler=OutcomeConsumer(engine, payments),
        group_id=group_id,
        backoff=backoff,
    )
    return broker


async def run(settings: Settings, health: Health | None = None) -> None:
    """Consume outcome facts into the ledger until cancelled."""
    engine = get_engine(settings)
    payments = PaymentEngine.from_settings(engine, PaymentSettings(), settings.data_dir)
    broker = build(settings, engine, payments)
    await broker.start()
    watching = asyncio.create_task(watch(broker, health or Health(CONSUMER)))
    try:
        await asyncio.Event().wait()
    finally:
        watching.cancel()
        await broker.stop()
