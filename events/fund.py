"""Well-being Action Fund events (topic ``linkway.fund``): a fund opened for a contract
and period, its budget changed, and each grant moved along its lifecycle. Amounts are in
pence, as integers. The subject (and Kafka key) is the fund id, so one fund's events stay
in order and its statement can be rebuilt from them.

No personal data: a grant names the pseudonymous referral and goal ids, a purpose code
and amounts. The supplier and anything said about the person stay in Linkway's database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from events import topics
from events.catalogue import EventData, event_type
from events.ids import Code, Id

GrantStatus = Literal["requested", "approved", "refused", "spent", "cancelled"]


@event_type(
    "linkway.fund.opened.v1",
    topics.FUND,
    "A Well-being Action Fund was opened for a contract and period, with its budget.",
)
class FundOpened(EventData):
    fund_id: Id
    contract_id: Id
    period: Id
    budget_pence: int = Field(ge=0)
    purposes: list[Code]
    max_grant_pence: int | None = Field(default=None, ge=1)
    occurred_at: datetime


@event_type(
    "linkway.fund.budget_changed.v1",
    topics.FUND,
    "A fund's budget was changed (never below what it has committed and spent).",
)
class FundBudgetChanged(EventData):
    fund_id: Id
    budget_pence: int = Field(ge=0)
    previous_budget_pence: int = Field(ge=0)
    reason_code: Code
    occurred_at: datetime


@event_type(
    "linkway.fund.grant_status_changed.v1",
    topics.FUND,
    "A grant from a fund was requested or moved along its lifecycle.",
)
class GrantStatusChanged(EventData):
    grant_id: Id
    fund_id: Id
    referral_id: Id
    goal_id: Id
    partner_id: Id
    purpose: Code
    status: GrantStatus
    amount_pence: int = Field(
        ge=1, description="the amount requested and, once approved, committed"
    )
    spent_pence: int = Field(ge=0, description="what was spent, once the status is spent")
    reason_code: Code | None = None
    occurred_at: datetime
