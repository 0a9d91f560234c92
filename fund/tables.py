"""The fund's tables, written only by ``fund.service``.

- ``funds``: one row per contract and period: the budget, the purposes it funds, the
  largest grant it makes; ``lock_count`` is bumped by every write on SQLite, where that
  update is what serialises writers (``fund.service.lock``);
- ``fund_grants``: one row per grant, its current status and amounts. Every change to a
  grant is also a ``GrantStatusChanged`` event in the outbox, written in the same
  transaction: the outbox is the grant's history.

Money is in pence, as 64-bit integers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utc(moment: datetime) -> datetime:
    """SQLite returns naive times; every time the fund stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class FundRow(SQLModel, table=True):
    __tablename__ = "funds"
    __table_args__ = (UniqueConstraint("contract_id", "period", name="uq_funds_contract_period"),)

    fund_id: str = Field(primary_key=True, max_length=64)
    contract_id: str = Field(max_length=64)
    period: str = Field(max_length=64)
    budget_pence: int = Field(sa_type=BigInteger)
    purposes: str  # JSON list of purpose codes, in the order the fund lists them
    max_grant_pence: int | None = Field(default=None, sa_type=BigInteger)
    opened_by: str = Field(max_length=64)
    opened_at: datetime = Field(sa_type=DateTime(timezone=True))
    lock_count: int = Field(default=0, sa_type=BigInteger)


class GrantRow(SQLModel, table=True):
    __tablename__ = "fund_grants"
    __table_args__ = (
        Index("ix_fund_grants_fund_status", "fund_id", "status"),
        Index("ix_fund_grants_referral", "referral_id"),
    )

    grant_id: str = Field(primary_key=True, max_length=64)
    fund_id: str = Field(max_length=64)
    referral_id: str = Field(max_length=64)
    goal_id: str = Field(max_length=64)
    partner_id: str = Field(max_length=64)  # the requesting link worker's Tier One partner
    purpose: str = Field(max_length=64)
    supplier: str = Field(max_length=200)
    amount_pence: int = Field(sa_type=BigInteger)
    spent_pence: int = Field(default=0, sa_type=BigInteger)
    status: str = Field(max_length=16)
    requested_by: str = Field(max_length=64)
    decided_by: str | None = Field(default=None, max_length=64)  # approved or refused it
    spent_by: str | None = Field(default=None, max_length=64)
    reason_code: str | None = Field(default=None, max_length=64)
    updated_by: str = Field(max_length=64)  # who made the last change (a retry converges)
    requested_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    # The goal's category when the grant was asked for: a revised plan renumbers its goals,
    # so the number alone may later name another goal. Last, as migration 0012 added it.
    goal_category: str | None = Field(default=None, max_length=64)
