"""The contract manager's reads: claims (filtered, paged), one claim, the evidence trail
behind a claim, and statements per contract, partner and month (JSON or CSV). Each read
is one session; none of them writes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session

from events.envelope import CloudEvent
from payments import event_store
from payments.base import EngineBase, made_entry, measures_of, outcome_of
from payments.claims import ClaimKey
from payments.errors import RateCardError
from payments.evidence import assess
from payments.ledger import LedgerEntry
from payments.statements import (
    PayerStatement,
    Statement,
    payer_csv,
    payer_statements,
    statements,
    to_csv,
)
from payments.views import (
    ClaimPage,
    ClaimView,
    EntryView,
    EventView,
    EvidenceTrail,
    MeasurementView,
    RateCardTerms,
)


class ClaimQueries(EngineBase):
    def claims(
        self,
        contract_id: str | None = None,
        partner_id: str | None = None,
        status: str | None = None,
        metric: str | None = None,
        period: str | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> ClaimPage:
        """Claims in the order they were made, filtered; ``after`` is a page's cursor."""
        wanted = dict(
            contract_id=contract_id,
            partner_id=partner_id,
            status=status,
            metric=metric,
            period=period,
        )
        with Session(self.engine) as session:
            groups = _by_claim(self._ledger.entries(session))
        items: list[ClaimView] = []
        for own in groups.values():
            if after is not None and own[0].seq <= after:
                continue
            view = self._view(own)
            if _matches(view, wanted):
                items.append(view)
                if len(items) > limit:
                    break
        more = len(items) > limit
        return ClaimPage(
            items=items[:limit], next_cursor=str(items[limit - 1].first_seq) if more else None
        )

    def claim(self, claim: str) -> ClaimView:
        with Session(self.engine) as session:
            return self._view(self._own(session, claim))

    def evidence(self, claim: str) -> EvidenceTrail:
        """The events, measurements and rate-card terms behind a claim, and its entries."""
        with Session(self.engine) as session:
            own = self._own(session, claim)
            view = self._view(own)
            made = made_entry(own)
            ids = list(made.evidence_event_ids)
            stored = {env.id: env for env in event_store.consumed(session, ids=ids)}
            mine = {row.event_id: row for row in event_store.published(session, ids)}
        events = [_event_view(event_id, stored, mine) for event_id in ids]
        outcome = outcome_of(stored.get(ids[0])) if ids else None
        terms, verdict = None, "the outcome event is not in the event store"
        try:
            card = self.book.version(view.contract_id, view.rate_card_version)
        except RateCardError as exc:
            verdict = str(exc)
        else:
            metric = card.metrics[view.metric]
            rule = metric.model_dump(
                include={"min_sessions", "instruments", "claimable_only_at_end", "max_per_person"}
            )
            terms = RateCardTerms(
                contract_id=card.contract_id,
                version=card.version,
                effective_from=card.effective_from,
                metric=view.metric,
                metric_name=metric.name,
                price_pence=metric.price_pence,
                rule=rule,
            )
            if outcome is not None:
                verdict = assess(outcome, metric, self.registry).detail
        counted = set(made.measurement_ids)
        measures = [
            MeasurementView(**m.model_dump(), counted=m.measurement_id in counted)
            for m in (measures_of(outcome) if outcome else [])
        ]
        return EvidenceTrail(
            claim=view,
            rule_met=verdict,
            rate_card=terms,
            events=events,
            measurements=measures,
            entries=[EntryView(**e.model_dump(include=set(EntryView.model_fields))) for e in own],
        )

    def statements(
        self,
        period: str | None = None,
        partner_id: str | None = None,
        contract_id: str | None = None,
    ) -> list[Statement]:
        """Per contract, partner and month: claimed, approved, paid, reversed, net, cap."""
        with Session(self.engine) as session:
            entries = self._ledger.entries(session)
        wanted = dict(period=period, partner_id=partner_id, contract_id=contract_id)
        return statements([e for e in entries if _matches(e, wanted)], self.book)

    def statements_csv(
        self,
        period: str | None = None,
        partner_id: str | None = None,
        contract_id: str | None = None,
    ) -> str:
        return to_csv(self.statements(period, partner_id, contract_id))

    def payer_statements(
        self, period: str | None = None, contract_id: str | None = None
    ) -> list[PayerStatement]:
        """Per contract, payer and month: each co-funder's shares of the claims."""
        with Session(self.engine) as session:
            entries = self._ledger.entries(session)
        wanted = dict(period=period, contract_id=contract_id)
        return payer_statements([e for e in entries if _matches(e, wanted)])

    def payer_statements_csv(
        self, period: str | None = None, contract_id: str | None = None
    ) -> str:
        return payer_csv(self.payer_statements(period, contract_id))


def _matches(item: Any, wanted: dict[str, Any]) -> bool:
    return all(v is None or getattr(item, k) == v for k, v in wanted.items())


def _event_view(event_id: str, stored: dict[str, CloudEvent], mine: dict[str, Any]) -> EventView:
    if (env := stored.get(event_id)) is not None:
        return EventView(
            event_id=event_id, found=True, type=env.type, source=env.source, time=env.time
        )
    if (row := mine.get(event_id)) is not None:
        return EventView(event_id=event_id, found=True, type=row.type, time=row.created_at)
    return EventView(event_id=event_id, found=False)


def _by_claim(entries: Iterable[LedgerEntry]) -> dict[ClaimKey, list[LedgerEntry]]:
    groups: dict[ClaimKey, list[LedgerEntry]] = {}
    for e in entries:
        groups.setdefault(ClaimKey(e.contract_id, e.referral_id, e.episode, e.metric), []).append(e)
    return groups
