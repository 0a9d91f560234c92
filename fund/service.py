"""The Well-being Action Fund over one database: funds, grants and statements.

Every write is one transaction that holds the fund's lock, re-reads what it depends on,
applies a rule from ``fund.rules``, and stages its event in the outbox
(``linkway.fund``, keyed by the fund id) beside the change: the change and its event
commit together or not at all, and the relay publishes afterwards.

The lock is the one the payment engine uses for its ledger, on the fund's own row:
PostgreSQL ``SELECT ... FOR UPDATE``; SQLite has no row locks, so an ``UPDATE`` of the
row takes the database's single write lock until commit. Either way it comes before any
read the decision depends on, so two approvals can never both see the same headroom:
the budget cannot be overspent, concurrent approvals included.

Every write converges when retried with the same ids (``api.idempotency.once`` hands a
retry the same reserved id): opening or requesting again finds the row it made; a move
to the status the grant already has, by the same actor, answers the grant as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from events import topics
from events.catalogue import EventData
from events.fund import FundBudgetChanged, FundOpened, GrantStatusChanged
from fund import rules
from fund.errors import FundExists, UnknownFund
from fund.reads import FundReads
from fund.tables import FundRow, GrantRow
from fund.views import FundView, GrantView
from infra.db import transaction
from messaging import outbox

SOURCE = "urn:linkway:fund"
# What a fund funds unless the contract manager lists its own: the small purchases the
# seeds describe a Well-being Action Fund paying for.
DEFAULT_PURPOSES = (
    "physical_activity",
    "social_activity",
    "learning",
    "travel",
    "equipment",
    "clothing",
    "digital",
    "household",
    "food",
    "other",
)


class FundService(FundReads):
    """The fund's writes, over its reads (``fund.reads``)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        source: str = SOURCE,
    ) -> None:
        super().__init__(engine, clock=clock)
        self._source = source

    # --- funds ----------------------------------------------------------------------------

    def open(
        self,
        fund_id: str,
        contract_id: str,
        period: str,
        budget_pence: int,
        actor_id: str,
        purposes: Sequence[str] = DEFAULT_PURPOSES,
        max_grant_pence: int | None = None,
    ) -> FundView:
        now = self._clock()
        try:
            with transaction(self.engine) as session:
                found = session.get(FundRow, fund_id)
                if found is not None:  # a retry of the same request
                    return FundView.of(found)
                row = FundRow(
                    fund_id=fund_id,
                    contract_id=contract_id,
                    period=period,
                    budget_pence=budget_pence,
                    purposes=json.dumps(list(dict.fromkeys(purposes))),
                    max_grant_pence=max_grant_pence,
                    opened_by=actor_id,
                    opened_at=now,
                )
                session.add(row)
                session.flush()
                data = FundOpened(
                    fund_id=fund_id,
                    contract_id=contract_id,
                    period=period,
                    budget_pence=budget_pence,
                    purposes=json.loads(row.purposes),
                    max_grant_pence=max_grant_pence,
                    occurred_at=now,
                )
                self._announce(session, data, fund_id, f"{fund_id}/opened", now)
                return FundView.of(row)
        except IntegrityError:
            raise FundExists(f"contract {contract_id} already has a fund for {period}") from None

    def change_budget(
        self, fund_id: str, budget_pence: int, reason_code: str, actor_id: str, change_id: str
    ) -> FundView:
        """Raise or lower the budget, never below what is committed and spent.
        ``change_id`` names the change, so a retry announces it once."""
        now = self._clock()
        with transaction(self.engine) as session:
            row = self._lock(session, fund_id)
            if row.budget_pence == budget_pence:
                return FundView.of(row)  # nothing to change (or a retry of this change)
            rules.check_budget(self._totals(session, row), budget_pence)
            data = FundBudgetChanged(
                fund_id=fund_id,
                budget_pence=budget_pence,
                previous_budget_pence=row.budget_pence,
                reason_code=reason_code,
                occurred_at=now,
            )
            row.budget_pence = budget_pence
            session.add(row)
            self._announce(session, data, fund_id, f"{fund_id}/budget/{change_id}", now)
            return FundView.of(row)

    # --- grants ---------------------------------------------------------------------------

    def request(
        self,
        fund_id: str,
        grant_id: str,
        *,
        referral_id: str,
        goal_id: str,
        partner_id: str,
        purpose: str,
        supplier: str,
        amount_pence: int,
        actor_id: str,
        goals: list[dict[str, object]] | None = None,
    ) -> GrantView:
        """A link worker asks for a grant for a person's goal; it commits nothing yet.
        ``goals``: the person's plan as the read model records it, if the goal is to be
        checked (``rules.check_goal``). A retry finds the grant it made before any check,
        so a plan changed since the first attempt cannot refuse what was already made."""
        now = self._clock()
        with transaction(self.engine) as session:
            fund = self._lock(session, fund_id)
            found = session.get(GrantRow, grant_id)
            if found is not None:  # a retry of the same request
                return GrantView.of(self._in(found, fund_id, None))
            purposes = tuple(json.loads(fund.purposes))
            rules.check_request(amount_pence, purpose, purposes, fund.max_grant_pence)
            category = rules.check_goal(goal_id, goals) if goals is not None else None
            row = GrantRow(
                grant_id=grant_id,
                fund_id=fund_id,
                referral_id=referral_id,
                goal_id=goal_id,
                goal_category=category,
                partner_id=partner_id,
                purpose=purpose,
                supplier=supplier,
                amount_pence=amount_pence,
                status="requested",
                requested_by=actor_id,
                updated_by=actor_id,
                requested_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            self._grant_event(session, row, now)
            return GrantView.of(row)

    def approve(self, fund_id: str, grant_id: str, actor_id: str, partner: str | None) -> GrantView:
        """Commit the grant's amount, if the budget still holds it."""

        def apply(session: Session, fund: FundRow, row: GrantRow) -> None:
            rules.check_approval(self._totals(session, fund), row.amount_pence)
            row.decided_by = actor_id

        return self._move(fund_id, grant_id, "approved", actor_id, partner, apply)

    def refuse(
        self, fund_id: str, grant_id: str, actor_id: str, reason_code: str, partner: str | None
    ) -> GrantView:
        def apply(_: Session, __: FundRow, row: GrantRow) -> None:
            row.decided_by, row.reason_code = actor_id, reason_code

        return self._move(fund_id, grant_id, "refused", actor_id, partner, apply)

    def spend(
        self, fund_id: str, grant_id: str, actor_id: str, spent_pence: int, partner: str | None
    ) -> GrantView:
        """Record what was paid to the supplier: it replaces the commitment, and whatever
        the approval committed beyond it goes back to the budget."""

        def apply(_: Session, __: FundRow, row: GrantRow) -> None:
            rules.check_spend(row.amount_pence, spent_pence)
            row.spent_pence, row.spent_by = spent_pence, actor_id

        return self._move(fund_id, grant_id, "spent", actor_id, partner, apply)

    def cancel(
        self, fund_id: str, grant_id: str, actor_id: str, reason_code: str, partner: str | None
    ) -> GrantView:
        """Withdraw a request, or release an approved grant's commitment unspent."""

        def apply(_: Session, __: FundRow, row: GrantRow) -> None:
            row.reason_code = reason_code

        return self._move(fund_id, grant_id, "cancelled", actor_id, partner, apply)

    # --- internals ------------------------------------------------------------------------

    def _move(
        self,
        fund_id: str,
        grant_id: str,
        to: str,
        actor_id: str,
        partner: str | None,
        apply: Callable[[Session, FundRow, GrantRow], None],
    ) -> GrantView:
        now = self._clock()
        with transaction(self.engine) as session:
            fund = self._lock(session, fund_id)  # first: every read below sees the latest
            row = self._in(session.get(GrantRow, grant_id), fund_id, partner)
            if row.status == to and row.updated_by == actor_id:
                return GrantView.of(row)  # a retry of the move that was made
            rules.check_move(row.status, to)  # the lifecycle's answer comes before the duties'
            rules.check_duty(row.requested_by, actor_id, to)
            apply(session, fund, row)
            row.status, row.updated_by, row.updated_at = to, actor_id, now
            session.add(row)
            session.flush()
            self._grant_event(session, row, now)
            return GrantView.of(row)

    @staticmethod
    def _lock(session: Session, fund_id: str) -> FundRow:
        """Serialise writers on this fund until the caller's transaction ends."""
        where = col(FundRow.fund_id) == fund_id
        if session.get_bind().dialect.name == "postgresql":
            row = session.exec(select(FundRow).where(where).with_for_update()).first()
        else:
            session.execute(update(FundRow).where(where).values(lock_count=FundRow.lock_count + 1))
            row = session.exec(select(FundRow).where(where)).first()
        if row is None:
            raise UnknownFund(f"no fund {fund_id}")
        return row

    @staticmethod
    def _totals(session: Session, fund: FundRow) -> rules.Totals:
        stmt = select(
            func.coalesce(
                func.sum(GrantRow.amount_pence).filter(col(GrantRow.status) == "approved"), 0
            ),
            func.coalesce(
                func.sum(GrantRow.spent_pence).filter(col(GrantRow.status) == "spent"), 0
            ),
        ).where(GrantRow.fund_id == fund.fund_id)
        committed, spent = session.exec(stmt).one()
        return rules.Totals(fund.budget_pence, int(committed), int(spent))

    def _grant_event(self, session: Session, row: GrantRow, at: datetime) -> None:
        data = GrantStatusChanged(
            grant_id=row.grant_id,
            fund_id=row.fund_id,
            referral_id=row.referral_id,
            goal_id=row.goal_id,
            partner_id=row.partner_id,
            purpose=row.purpose,
            status=row.status,
            amount_pence=row.amount_pence,
            spent_pence=row.spent_pence,
            reason_code=row.reason_code,
            occurred_at=at,
        )
        self._announce(session, data, row.fund_id, f"{row.grant_id}/{row.status}", at)

    def _announce(
        self, session: Session, data: EventData, fund_id: str, name: str, at: datetime
    ) -> None:
        # The event id is derived from what happened, so a retried write stages it once.
        event_id = str(uuid5(NAMESPACE_URL, f"urn:linkway:fund/{name}"))
        envelope = outbox.to_envelope(data, fund_id, self._source, event_id, at)
        outbox.add(session, envelope, topics.FUND)
