"""The bodies a contract manager posts to the payment engine: strict (an unknown field is
refused, not ignored) and bounded, so nonsense never reaches the ledger."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from events.ids import Id

_STRICT = ConfigDict(extra="forbid")
# The ledger's sequence numbers are PostgreSQL BIGINTs: nothing larger is a seq.
MAX_SEQ = 2**63 - 1


class DisputeRequest(BaseModel):
    model_config = _STRICT
    reason_code: Id


class ResolveRequest(BaseModel):
    model_config = _STRICT
    outcome: Literal["upheld", "reversed"]


class PaidRequest(BaseModel):
    model_config = _STRICT
    payment_ref: Id


class HeldCheckpoint(BaseModel):
    model_config = _STRICT
    seq: int = Field(ge=0, le=MAX_SEQ)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$")
