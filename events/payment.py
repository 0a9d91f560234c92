"""Payment events (topic ``linkway.payments``): the claim lifecycle, published by the
outcomes-contract payment engine. Amounts are in pence, as integers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from events import topics
from events.catalogue import EventData, event_type
from events.ids import Id

ClaimStatus = Literal[
    "claimed", "capped", "validated", "approved", "paid", "disputed", "upheld", "reversed"
]


@event_type(
    "linkway.payment.claim_status_changed.v1",
    topics.PAYMENTS,
    "An outcome claim was created or moved along its lifecycle.",
)
class ClaimStatusChanged(EventData):
    claim_id: Id
    contract_id: Id
    referral_id: Id
    episode: int = Field(ge=1)
    metric: str
    partner_id: Id
    status: ClaimStatus
    amount_pence: int = Field(ge=0)
    rate_card_version: str
    ledger_entry_hash: str
    occurred_at: datetime
