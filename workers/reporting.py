"""The reporting consumer (``linkway consume reporting``, group ``linkway.reporting``):
the lifecycle, outcome and payment topics and every dead-letter topic, folded into the
reporting read models (``reporting.project``). While ``linkway rebuild reporting`` runs it
applies nothing (``reporting.lease``): each record is retried after a back-off, its offset
kept, until the rebuild is done.

Each record's effect and its processed-event record commit in one transaction before
the offset commits, so a redelivered record applies once; ``linkway rebuild reporting``
uses the same consumer name, so the two never apply an event twice between them. Reporting
never refuses a record: what it cannot read is skipped (the consumers that act on those
topics dead-letter what is wrong, and reporting counts their dead letters).
"""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from sqlalchemy.engine import Engine

from infra.db import get_engine, transaction
from infra.health import Health
from infra.settings import Settings
from messaging.consumer import Backoff, Inbound, make_broker, subscribe, watch
from reporting import lease, project

GROUP_ID = "linkway.reporting"


class ReportingConsumer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._row = False

    async def __call__(self, inbound: Inbound) -> None:
        await asyncio.to_thread(self._apply, inbound)

    def _apply(self, inbound: Inbound) -> None:
        if not self._row:
            lease.ensure_row(self.engine)
            self._row = True
        with transaction(self.engine) as session:
            # While a rebuild runs this raises: retried after a back-off, offset kept.
            lease.hold_off(session)
            project.apply(session, inbound.topic, inbound.value or b"", inbound.headers)


def build(
    settings: Settings,
    engine: Engine,
    *,
    group_id: str = GROUP_ID,
    topics: tuple[str, ...] = project.TOPICS,
    backoff: Backoff | None = None,
) -> KafkaBroker:
    broker = make_broker(settings, client_id=f"linkway-{project.CONSUMER}")
    subscribe(
        broker,
        name=project.CONSUMER,
        topics=list(topics),
        handler=ReportingConsumer(engine),
        group_id=group_id,
        backoff=backoff,
    )
    return broker


async def run(settings: Settings, health: Health | None = None) -> None:
    """Consume into the reporting read models until cancelled."""
    broker = build(settings, get_engine(settings))
    await broker.start()
    watching = asyncio.create_task(watch(broker, health or Health(project.CONSUMER)))
    try:
        await asyncio.Event().wait()
    finally:
        watching.cancel()
        await broker.stop()
