"""The bodies posted to the Well-being Action Fund: strict (an unknown field is refused,
not ignored) and bounded. Money is in pence, as integers; ids and codes only, but for
the supplier, one line of text kept with the grant and never put in an event."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from events.ids import Code, Id
from infra.text import Line

_STRICT = ConfigDict(extra="forbid")
# A fund's budget and a grant fit in PostgreSQL's BIGINT with room to add them up.
MAX_PENCE = 10**12  # ten billion pounds: more than any fund, far less than 2**63


class OpenFundRequest(BaseModel):
    model_config = _STRICT
    contract_id: Id
    period: Id = Field(description="the fund's period, e.g. a financial year: 2026-27")
    budget_pence: int = Field(ge=0, le=MAX_PENCE)
    purposes: list[Code] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="the purpose categories the fund pays for; default: fund.service's list",
    )
    max_grant_pence: int | None = Field(default=None, ge=1, le=MAX_PENCE)


class BudgetRequest(BaseModel):
    model_config = _STRICT
    budget_pence: int = Field(ge=0, le=MAX_PENCE)
    reason_code: Code


class GrantRequest(BaseModel):
    model_config = _STRICT
    referral_id: Id
    goal_id: Id = Field(
        description="the goal the grant serves: its number in the person's current plan, as "
        'the referral\'s goals[].number shows it, e.g. "1"'
    )
    purpose: Code = Field(description="one of the fund's purposes")
    supplier: Line = Field(min_length=1, max_length=200, description="who is paid")
    amount_pence: int = Field(ge=1, le=MAX_PENCE)


class ReasonRequest(BaseModel):
    model_config = _STRICT
    reason_code: Code


class SpendRequest(BaseModel):
    model_config = _STRICT
    spent_pence: int = Field(ge=0, le=MAX_PENCE, description="at most the approved amount")
