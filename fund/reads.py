"""The Well-being Action Fund's reads: funds, grants and the statement. Each reads one
consistent view (the statement in one transaction, so its lines add up); none writes.
``fund.service.FundService`` adds the writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from fund.errors import UnknownFund, UnknownGrant
from fund.tables import FundRow, GrantRow
from fund.views import FundStatement, FundView, GrantView, Money
from infra.db import transaction


class FundReads:
    def __init__(
        self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.engine, self._clock = engine, clock

    # --- funds ----------------------------------------------------------------------------

    def funds(self, contract_id: str | None = None, period: str | None = None) -> list[FundView]:
        stmt = select(FundRow).order_by(col(FundRow.opened_at), col(FundRow.fund_id))
        if contract_id is not None:
            stmt = stmt.where(FundRow.contract_id == contract_id)
        if period is not None:
            stmt = stmt.where(FundRow.period == period)
        with Session(self.engine) as session:
            return [FundView.of(row) for row in session.exec(stmt)]

    def fund(self, fund_id: str) -> FundView:
        with Session(self.engine) as session:
            return FundView.of(self._fund(session, fund_id))

    # --- grants ---------------------------------------------------------------------------

    def grant(self, fund_id: str, grant_id: str, partner: str | None = None) -> GrantView:
        with Session(self.engine) as session:
            self._fund(session, fund_id)
            return GrantView.of(self._in(session.get(GrantRow, grant_id), fund_id, partner))

    def grants(
        self,
        fund_id: str,
        partner: str | None = None,
        status: str | None = None,
        referral_id: str | None = None,
    ) -> list[GrantView]:
        stmt = select(GrantRow).where(GrantRow.fund_id == fund_id)
        for column, value in (
            (GrantRow.partner_id, partner),
            (GrantRow.status, status),
            (GrantRow.referral_id, referral_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        stmt = stmt.order_by(col(GrantRow.requested_at), col(GrantRow.grant_id))
        with Session(self.engine) as session:
            self._fund(session, fund_id)
            return [GrantView.of(row) for row in session.exec(stmt)]

    def referral_grants(self, referral_id: str, since: datetime | None = None) -> list[GrantView]:
        """A person's grants across every fund (approved or spent: the support they had),
        oldest first; ``since``: requested then or later (an episode's start)."""
        stmt = select(GrantRow).where(
            GrantRow.referral_id == referral_id, col(GrantRow.status).in_(("approved", "spent"))
        )
        if since is not None:
            stmt = stmt.where(col(GrantRow.requested_at) >= since)
        stmt = stmt.order_by(col(GrantRow.requested_at), col(GrantRow.grant_id))
        with Session(self.engine) as session:
            return [GrantView.of(row) for row in session.exec(stmt)]

    # --- the statement --------------------------------------------------------------------

    def statement(self, fund_id: str) -> FundStatement:
        """Budget, committed, spent, available and requested, by purpose and by partner,
        read in one transaction so its lines add up."""
        with transaction(self.engine) as session:
            fund = self._fund(session, fund_id)
            by_purpose: dict[str, Money] = {p: Money() for p in json.loads(fund.purposes)}
            by_partner: dict[str, Money] = {}
            stmt = (
                sa_select(
                    col(GrantRow.purpose),
                    col(GrantRow.partner_id),
                    col(GrantRow.status),
                    func.count(),
                    func.sum(GrantRow.amount_pence),
                    func.sum(GrantRow.spent_pence),
                )
                .where(col(GrantRow.fund_id) == fund_id)
                .group_by(col(GrantRow.purpose), col(GrantRow.partner_id), col(GrantRow.status))
            )
            for purpose, partner, status, count, amount, spent in session.execute(stmt).all():
                for line in (
                    by_purpose.setdefault(purpose, Money()),
                    by_partner.setdefault(partner, Money()),
                ):
                    _add(line, status, int(count), int(amount or 0), int(spent or 0))
            committed = sum(m.committed_pence for m in by_purpose.values())
            spent = sum(m.spent_pence for m in by_purpose.values())
            return FundStatement(
                fund_id=fund.fund_id,
                contract_id=fund.contract_id,
                period=fund.period,
                budget_pence=fund.budget_pence,
                committed_pence=committed,
                spent_pence=spent,
                available_pence=fund.budget_pence - committed - spent,
                requested_pence=sum(m.requested_pence for m in by_purpose.values()),
                by_purpose=by_purpose,
                by_partner=dict(sorted(by_partner.items())),
                as_of=self._clock(),
            )

    @staticmethod
    def _fund(session: Session, fund_id: str) -> FundRow:
        row = session.get(FundRow, fund_id)
        if row is None:
            raise UnknownFund(f"no fund {fund_id}")
        return row

    @staticmethod
    def _in(row: GrantRow | None, fund_id: str, partner: str | None) -> GrantRow:
        """The grant, if it is in this fund and (for a partner) the partner's own: another
        partner's grant answers exactly as a missing one."""
        if row is None or row.fund_id != fund_id or partner not in (None, row.partner_id):
            raise UnknownGrant(f"no grant in fund {fund_id} has that id")
        return row


def _add(line: Money, status: str, count: int, amount: int, spent: int) -> None:
    if status == "requested":
        line.requested_pence += amount
    elif status == "approved":
        line.committed_pence += amount
        line.grants_approved += count
    elif status == "spent":
        line.spent_pence += spent
        line.grants_approved += count
