"""What the fund answers with: funds, grants and the fund statement. Pseudonymous ids,
codes and amounts in pence; the supplier is the one free-text field, shown on the grant
only (never in an event or the statement)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from pydantic import BaseModel, Field

from fund.tables import FundRow, GrantRow, utc


class FundView(BaseModel):
    fund_id: str
    contract_id: str
    period: str
    budget_pence: int
    purposes: list[str]
    max_grant_pence: int | None
    opened_by: str
    opened_at: datetime

    @classmethod
    def of(cls, row: FundRow) -> FundView:
        return cls(
            fund_id=row.fund_id,
            contract_id=row.contract_id,
            period=row.period,
            budget_pence=row.budget_pence,
            purposes=json.loads(row.purposes),
            max_grant_pence=row.max_grant_pence,
            opened_by=row.opened_by,
            opened_at=utc(row.opened_at),
        )


class GrantView(BaseModel):
    grant_id: str
    fund_id: str
    referral_id: str
    goal_id: str
    goal_category: str | None = Field(
        default=None,
        description="the goal's category when the grant was asked for (a revised plan may "
        "renumber its goals; this says what the grant was for)",
    )
    partner_id: str
    purpose: str
    supplier: str
    amount_pence: int
    spent_pence: int
    status: str
    requested_by: str
    decided_by: str | None
    spent_by: str | None
    reason_code: str | None
    requested_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: GrantRow) -> GrantView:
        fields = row.model_dump()
        fields["requested_at"] = utc(row.requested_at)
        fields["updated_at"] = utc(row.updated_at)
        return cls.model_validate(fields)


class GrantPage(BaseModel):
    items: list[GrantView]


class Money(BaseModel):
    """One line of the statement, in pence: requested is what waits for a decision."""

    requested_pence: int = 0
    committed_pence: int = 0
    spent_pence: int = 0
    grants_approved: int = 0  # approved at some point: still committed, or spent


class FundStatement(BaseModel):
    """Budget, committed, spent and available, by purpose and by partner. It reconciles:
    ``committed + spent + available == budget``, and the purpose lines and the partner
    lines each add up to the totals."""

    fund_id: str
    contract_id: str
    period: str
    budget_pence: int
    committed_pence: int
    spent_pence: int
    available_pence: int
    requested_pence: int
    by_purpose: dict[str, Money]
    by_partner: dict[str, Money]
    as_of: datetime


STATEMENT_COLUMNS = (
    "fund_id",
    "contract_id",
    "period",
    "line",
    "key",
    "budget_pence",
    "committed_pence",
    "spent_pence",
    "available_pence",
    "requested_pence",
    "grants_approved",
    "as_of",
)


def statement_csv(statement: FundStatement) -> str:
    """The statement for finance as CSV, in pence: one ``total`` line (with the budget and
    what is available), then one line per purpose and one per partner (``key``), each
    breakdown adding up to the total. Ids and codes only: no supplier, no person."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    head = [statement.fund_id, statement.contract_id, statement.period]
    as_of = statement.as_of.isoformat()
    lines = [*statement.by_purpose.values()]
    writer.writerow(
        [
            *head, "total", "", statement.budget_pence, statement.committed_pence,
            statement.spent_pence, statement.available_pence, statement.requested_pence,
            sum(m.grants_approved for m in lines), as_of,
        ]
    )  # fmt: skip
    for name, breakdown in (("purpose", statement.by_purpose), ("partner", statement.by_partner)):
        for key, m in breakdown.items():
            writer.writerow(
                [
                    *head, name, key, "", m.committed_pence, m.spent_pence, "",
                    m.requested_pence, m.grants_approved, as_of,
                ]
            )  # fmt: skip
    return out.getvalue()
