"""Stating distal outcomes: for each engaged episode of a referral, once a measure's
after-window has closed and the feed covers every month of both windows, one
``linkway.outcome.distal_change.v1`` goes to the outbox (and from there to the payment
engine), as the pathway's other outcome facts do.

Only an episode that reached engagement is compared: the contract pays for people who
were supported, and the outcome carries that engagement's partner, locality and consent
purposes (the engagement event is its evidence). The event id is derived from
(referral, episode, measure, window), so stating again, after a crash or from a second
importer, adds nothing: the outbox is idempotent by event id.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from activities.readmodel import EpisodeRow
from events import topics
from events.catalogue import EventRejected, parse
from events.outcome import DistalChange, EngagementAchieved
from inbound.distal_store import DistalActivity, counts_for
from infra.db import transaction
from messaging import outbox
from pathway import distal


def distal_event_id(referral_id: str, episode: int, measure: str, months: int) -> str:
    return str(uuid5(NAMESPACE_URL, f"linkway:distal/{referral_id}/{episode}/{measure}/{months}"))


class DistalOutcomes:
    def __init__(self, engine: Engine, window_months: int, event_source: str) -> None:
        self.engine = engine
        self.window_months = window_months
        self.event_source = event_source

    def state(self, referral_id: str, today: date | None = None) -> list[DistalChange]:
        """Stage every distal outcome this referral now completes; returns the new ones."""
        today = today or datetime.now(UTC).date()
        stated: list[DistalChange] = []
        with transaction(self.engine) as session:
            engaged = dict(_engagements(session, referral_id))
            if not engaged:
                return []
            episodes = session.exec(
                select(EpisodeRow).where(EpisodeRow.referral_id == referral_id)
            ).all()
            by_measure = counts_for(session, referral_id)
            for episode in episodes:
                if episode.number not in engaged:
                    continue
                event_id, engagement = engaged[episode.number]
                for measure, counts in sorted(by_measure.items()):
                    change = distal.change(
                        counts, episode.opened_at.date(), self.window_months, today
                    )
                    if change is None:
                        continue
                    fact = distal.fact(engagement, event_id, measure, change, self.window_months)
                    envelope = outbox.to_envelope(
                        fact,
                        referral_id,
                        self.event_source,
                        distal_event_id(referral_id, episode.number, measure, self.window_months),
                        fact.occurred_at,
                    )
                    if outbox.add(session, envelope, topics.OUTCOMES):
                        stated.append(fact)
        return stated

    def state_all(self, today: date | None = None) -> int:
        """Every referral the feed has counts for (``linkway distal close``, daily):
        windows close on the first of a month whether or not a row arrives that day."""
        with Session(self.engine) as session:
            referral_ids = session.exec(select(DistalActivity.referral_id).distinct()).all()
        return sum(len(self.state(r, today)) for r in referral_ids)

    def stated_covering(self, referral_id: str, measure: str, month: str) -> bool:
        """Whether an outcome already stated for this measure counted this month."""
        with Session(self.engine) as session:
            for _, data in _outcomes(session, referral_id, DistalChange.TYPE):
                assert isinstance(data, DistalChange)
                first, last = f"{data.before_from:%Y-%m}", f"{data.after_to:%Y-%m}"
                if data.measure == measure and first <= month <= last:
                    return True
        return False


def _engagements(
    session: Session, referral_id: str
) -> Iterator[tuple[int, tuple[str, EngagementAchieved]]]:
    for event_id, data in _outcomes(session, referral_id, EngagementAchieved.TYPE):
        assert isinstance(data, EngagementAchieved)
        yield data.episode, (event_id, data)


def _outcomes(session: Session, referral_id: str, type_: str) -> Iterator[tuple[str, object]]:
    rows = session.exec(
        select(outbox.OutboxRow.payload)
        .where(outbox.OutboxRow.key == referral_id, outbox.OutboxRow.type == type_)
        .order_by(col(outbox.OutboxRow.seq))
    )
    for payload in rows:
        try:
            envelope, data = parse(payload.encode())
        except EventRejected:  # written by Linkway, so never; a bad row states nothing
            continue
        yield envelope.id, data
