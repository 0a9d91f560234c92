"""Provider facts, whichever door they come in by: the inbound Kafka consumer
(``workers.providers``) and the HTTP API for providers without Kafka (``api.providers``)
both hand a validated ``linkway.provider.*`` event's data here, so both apply a fact the
same way and give the same result:

1. **deduplicate** by event id: one processed-event record per fact, shared by both
   doors, so a fact sent twice (or once by each door) applies once;
2. **authorise** against the handoff row: the handoff exists, belongs to the named
   referral and was made to this provider;
3. **signal** the referral's workflow (``provider_responded`` / ``attendance_reported``),
   where the pure rules in ``pathway.rules.providers`` decide what the fact changes;
4. **record** the event id as processed.

The HTTP door applies one fact per request (``ProviderFacts.submit``: steps 1 and 2 in
one transaction, the signal, step 4 in another). The Kafka consumer applies a polled
batch through a ``FactBatch``: steps 1 and 2 for the whole batch in one transaction up
front, the signals as they come, and step 4 for every fact the batch signalled in one
transaction at the end, before the offsets commit. Both go through the same
``authorised``, ``ProviderFacts.signal`` and ``ProviderFacts.record``. A record that
finds one of its facts recorded already (it came by both doors at once) records the
others one by one; the workflow applied it once, by event id.

Attendance must be on a plausible date (``implausible_date``): not before the handoff
was requested, not in the future beyond a day's clock skew. The HTTP routes check it
first and answer 422 per report or CSV row; ``ProviderFacts.signal`` checks it again for
both doors, so a Kafka report dated 9999-12-31 is dead-lettered rather than counted
towards an outcome the contract pays for.

Errors, drawn once::

    EventRejected (events.catalogue)   the Kafka consumer dead-letters it
    ├── ImplausibleDate                HTTP answers 422 (checked before submitting)
    └── FactRefused                    HTTP answers 404, the same as for no handoff at all
        ├── UnknownHandoff             no such handoff
        └── NotAuthorised              the handoff is not this provider's, or not the referral's

Anything else (Temporal or the database unavailable) propagates: the consumer retries
the message, the API answers 5xx and the provider retries with the same event id.

HTTP reports have no event id of their own, so one is derived from what the report says
(``response_event_id`` / ``attendance_event_id``): a retried request or upload is the same
fact. The provider tool derives its ids the same way (``providerkit.contract``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client

from activities.readmodel import HandoffRow
from events import provider
from events.catalogue import EventRejected
from infra.db import chunks, transaction
from messaging.consumer import is_processed, processed_among, record_processed
from pathway import commands as cmd
from workflows import referral_workflow_id
from workflows.referral import ReferralWorkflow

CONSUMER = "providers"  # names the processed-event records of both doors
SIGNAL_TIMEOUT = timedelta(seconds=10)
# Published in docs/providers.md: partners derive the same ids for the same reports.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c4c1e-3f57-4c8e-9a53-2a1f0c7d5b10")

# How far a provider's clock may be ahead of ours, or a session be reported as held the
# day before its handoff (time zones): a session date outside that is refused.
SKEW = timedelta(days=1)

ProviderEvent = provider.ProviderResponse | provider.AttendanceReported
Fact = cmd.ProviderResponded | cmd.AttendanceRecorded


class FactRefused(EventRejected):
    """The fact names no handoff this provider may report on."""


class UnknownHandoff(FactRefused):
    pass


class NotAuthorised(FactRefused):
    pass


class ImplausibleDate(EventRejected):
    """An attendance report's session date cannot be right for its handoff."""


def implausible_date(
    session_date: date, requested_at: datetime, now: datetime | None = None
) -> str | None:
    """Why a session date cannot be right for a handoff requested at ``requested_at``
    (a UTC time), or None when it can."""
    now = now or datetime.now(UTC)
    if session_date > (now + SKEW).date():
        return "must not be in the future"
    if session_date < (requested_at - SKEW).date():
        return "must not be before the handoff was requested"
    return None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def response_event_id(
    provider_id: str,
    handoff_id: str,
    decision: str,
    reason_code: str | None = None,
    waitlist_band: str | None = None,
    delivered_code: str | None = None,
    sessions_delivered: int | None = None,
) -> str:
    """A completion has neither reason nor band: what was delivered and the sessions held
    take those two places (published in docs/providers.md)."""
    if decision == "complete":
        reason_code = delivered_code
        waitlist_band = None if sessions_delivered is None else str(sessions_delivered)
    parts = ["response", provider_id, handoff_id, decision, reason_code or "", waitlist_band or ""]
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "|".join(parts)))


def attendance_event_id(provider_id: str, handoff_id: str, session_date: date, status: str) -> str:
    parts = ["attendance", provider_id, handoff_id, session_date.isoformat(), status]
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "|".join(parts)))


def to_fact(event_id: str, data: ProviderEvent) -> Fact:
    """The workflow's signal payload for an event's data. Raises pydantic's
    ``ValidationError`` if ``event_id`` is not a valid reference."""
    common = {
        "event_id": event_id,
        "handoff_id": data.handoff_id,
        "provider_id": data.provider_id,
        "occurred_at": data.occurred_at,
    }
    if isinstance(data, provider.ProviderResponse):
        return cmd.ProviderResponded(
            **common,
            decision=data.decision,
            reason_code=data.reason_code,
            waitlist_band=data.waitlist_band,
            delivered_code=data.delivered_code,
            sessions_delivered=data.sessions_delivered,
        )
    return cmd.AttendanceRecorded(**common, session_date=data.session_date, status=data.status)


class ProviderFacts:
    """Authorise, deduplicate, signal and record provider facts (the module docstring)."""

    def __init__(self, client: Client, engine: Engine) -> None:
        self.client = client
        self.engine = engine

    def handoff(self, provider_id: str, handoff_id: str) -> HandoffRow:
        """The handoff, if it was made to ``provider_id``; else ``FactRefused``."""
        with transaction(self.engine) as session:
            row = session.get(HandoffRow, handoff_id)
        return _made_to(row, provider_id, handoff_id)

    def authorise(self, data: ProviderEvent) -> HandoffRow:
        return _part_of(self.handoff(data.provider_id, data.handoff_id), data)

    def screen(self, event_id: str, data: ProviderEvent) -> HandoffRow | None:
        """Deduplicate and authorise in one transaction: None when ``event_id`` was
        applied before, else the handoff ``data`` may report on (``FactRefused`` if none)."""
        with transaction(self.engine) as session:
            if is_processed(session, CONSUMER, event_id):
                return None
            row = session.get(HandoffRow, data.handoff_id)
        return authorised(row, data)

    def screen_many(
        self, event_ids: Collection[str], handoff_ids: Collection[str]
    ) -> tuple[set[str], dict[str, HandoffRow]]:
        """``screen``'s two reads for many facts in one transaction: which of
        ``event_ids`` were applied before, and the handoff rows among ``handoff_ids``."""
        with transaction(self.engine) as session:
            processed = processed_among(session, CONSUMER, event_ids)
            rows: dict[str, HandoffRow] = {}
            for chunk in chunks(handoff_ids):
                found = session.exec(
                    select(HandoffRow).where(col(HandoffRow.handoff_id).in_(chunk))
                )
                rows.update((row.handoff_id, row) for row in found)
        return processed, rows

    async def submit(self, fact: Fact, data: ProviderEvent) -> bool:
        """Apply one fact; returns False when its event id was applied before."""
        row = await asyncio.to_thread(self.screen, fact.event_id, data)
        if row is None:
            return False
        await self.signal(fact, data, row)
        await asyncio.to_thread(self.record, [fact.event_id])
        return True

    async def signal(self, fact: Fact, data: ProviderEvent, handoff: HandoffRow) -> None:
        """Signal the fact to its referral's workflow, ``handoff`` being the authorised
        handoff it reports on; ``ImplausibleDate`` for a session it cannot have held."""
        if isinstance(data, provider.AttendanceReported):
            implausible = implausible_date(data.session_date, _utc(handoff.requested_at))
            if implausible:
                # The reason names the field and the rule, never the value sent.
                raise ImplausibleDate(f"implausible date: session_date {implausible}")
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

    def record(self, event_ids: Sequence[str]) -> None:
        """Record signalled facts as processed, all in one transaction. If one of them was
        recorded first (the same fact came through the other door, or a retry, at the
        same moment: the workflow applied it once, by event id), the others are recorded
        one transaction each, so none of them is lost."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return
        try:
            with transaction(self.engine) as session:
                for event_id in ids:
                    record_processed(session, CONSUMER, event_id)
        except IntegrityError:
            if len(ids) > 1:
                for event_id in ids:
                    self.record([event_id])


class FactBatch:
    """The Kafka consumer's facts from one polled batch (``workers.providers``), applied as
    ``ProviderFacts.submit`` applies one, but screened together up front (``screen``:
    one transaction for the whole batch) and recorded together at the end (``record``:
    one transaction), with the same authorisation, date check and signal.

    A fact whose event id was recorded before the batch, or was already signalled in
    this batch, is not signalled. One the batch's screen did not cover (a handoff it did
    not find: unknown, or not yet committed then) is screened alone, as the HTTP door
    does. Until ``record`` commits, the batch's facts are signalled but not recorded: a
    crash in between redelivers the batch and signals them again, and the workflow
    ignores a fact whose event id it has seen (``pathway.rules.apply_fact``)."""

    def __init__(
        self,
        facts: ProviderFacts,
        screened: set[str],
        processed: set[str],
        rows: dict[str, HandoffRow],
    ) -> None:
        self.facts = facts
        self.screened = screened
        self.processed = processed
        self.rows = rows
        self.applied: list[str] = []  # signalled, in order; recorded by ``record``
        self._claimed: set[str] = set()

    @classmethod
    async def screen(
        cls, facts: ProviderFacts, events: Sequence[tuple[Fact, ProviderEvent]]
    ) -> FactBatch:
        event_ids = {fact.event_id for fact, _ in events}
        processed, rows = await asyncio.to_thread(
            facts.screen_many, event_ids, {data.handoff_id for _, data in events}
        )
        return cls(facts, event_ids, processed, rows)

    async def submit(self, fact: Fact, data: ProviderEvent) -> bool:
        """Apply one of the batch's facts; False when its event id was applied before."""
        event_id = fact.event_id
        if event_id in self.processed or event_id in self._claimed:
            return False
        row = self.rows.get(data.handoff_id)
        if row is None or event_id not in self.screened:
            row = await asyncio.to_thread(self.facts.screen, event_id, data)
            if row is None:
                return False
        else:
            row = authorised(row, data)
        self._claimed.add(event_id)  # a second lane with the same id must not signal it too
        try:
            await self.facts.signal(fact, data, row)
        except BaseException:
            self._claimed.discard(event_id)
            raise
        self.applied.append(event_id)
        return True

    async def record(self) -> None:
        """Record every fact this batch signalled, in one transaction."""
        if self.applied:
            await asyncio.to_thread(self.facts.record, self.applied)


def authorised(row: HandoffRow | None, data: ProviderEvent) -> HandoffRow:
    """``row`` (the handoff ``data`` names, None if there is none) if ``data``'s provider
    may report on it for ``data``'s referral; else ``FactRefused``."""
    return _part_of(_made_to(row, data.provider_id, data.handoff_id), data)


def _made_to(row: HandoffRow | None, provider_id: str, handoff_id: str) -> HandoffRow:
    if row is None:
        raise UnknownHandoff(f"unknown handoff {handoff_id}")
    if row.provider_id != provider_id:
        raise NotAuthorised(
            f"unauthorised: handoff {handoff_id} was not made to provider {provider_id}"
        )
    return row


def _part_of(row: HandoffRow, data: ProviderEvent) -> HandoffRow:
    if row.referral_id != data.referral_id:
        raise NotAuthorised(
            f"unauthorised: handoff {data.handoff_id} is not part of referral {data.referral_id}"
        )
    return row
