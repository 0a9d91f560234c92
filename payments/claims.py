"""Claims: their identity, their current state, and the lifecycle they move through.

A claim is identified by (contract, referral, episode, metric), so an outcome can be
claimed at most once per episode however often its event is delivered. Its lifecycle::

    claimed ─► validated ─► approved ─► paid
       └──────────┴────────────┴─────────┴─► disputed ─► upheld   (resumes where it was)
                                                      └─► reversed (terminal)
    capped (terminal, unless the claim is re-evaluated against the caps ─► claimed)

Nothing is updated or deleted: each move is a new ledger entry, and a reversal is an
entry with a negative amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple, get_args
from uuid import NAMESPACE_URL, uuid5

from events.payment import ClaimStatus
from payments.errors import IllegalTransition

# A first approval of a claim that needs two: recorded, but the status does not move.
FIRST_APPROVAL = "first_approval"
EntryKind = ClaimStatus | Literal["first_approval"]
STATUSES: tuple[str, ...] = get_args(ClaimStatus)
EARNING: frozenset[str] = frozenset(
    {"claimed", "validated", "approved", "paid", "disputed", "upheld"}
)

_NEXT: dict[str | None, tuple[str, ...]] = {
    None: ("claimed", "capped"),
    "claimed": ("validated", "disputed"),
    "validated": ("approved", "disputed"),
    "approved": ("paid", "disputed"),
    "paid": ("disputed",),
    "disputed": ("upheld", "reversed"),
    "reversed": (),
    "capped": (),
}
_CLAIM_NAMESPACE = uuid5(NAMESPACE_URL, "https://linkway.example/payments/claims")


class ClaimKey(NamedTuple):
    contract_id: str
    referral_id: str
    episode: int
    metric: str


def idempotency_key(key: ClaimKey) -> str:
    """One string per claim; ids cannot contain ``/``, so the parts cannot run together."""
    return f"{key.contract_id}/{key.referral_id}/{key.episode}/{key.metric}"


def claim_id(key: ClaimKey) -> str:
    """A stable id for the claim (the same on every replay), safe for event ids."""
    return str(uuid5(_CLAIM_NAMESPACE, idempotency_key(key)))


@dataclass(frozen=True, slots=True)  # one per claim, held by the million in reconciliation
class ClaimRecord:
    """A claim as it stands after every ledger entry about it."""

    key: ClaimKey
    partner_id: str
    period: str  # the outcome's month, YYYY-MM, as caps and statements count it
    occurred_at: datetime
    status: ClaimStatus
    amount_pence: int  # what was claimed (0 when capped); never changes
    rate_card_version: str
    evidence_event_ids: tuple[str, ...] = ()
    statuses: tuple[ClaimStatus, ...] = ()  # every status, oldest first
    claimant_id: str = ""
    validator_id: str | None = None
    approver_ids: tuple[str, ...] = ()
    shares: tuple[tuple[str, int], ...] = ()  # (payer, pence) of a co-funded claim

    @property
    def earning_pence(self) -> int:
        """What the claim counts against caps: its amount unless capped or reversed."""
        return self.amount_pence if self.status in EARNING else 0

    @property
    def earning_shares(self) -> tuple[tuple[str, int], ...]:
        """Each payer's part of ``earning_pence``."""
        return self.shares if self.status in EARNING else ()


def allowed_next(statuses: Sequence[str]) -> tuple[str, ...]:
    """The statuses a claim with this history may move to."""
    if not statuses:
        return _NEXT[None]
    if statuses[-1] == "upheld":
        # An upheld dispute resumes the lifecycle where the dispute interrupted it.
        resumed = [s for s in statuses if s not in ("disputed", "upheld")]
        return _NEXT[resumed[-1] if resumed else None]
    return _NEXT[statuses[-1]]


def transition(statuses: Sequence[str], to: str, *, reevaluation: bool = False) -> ClaimStatus:
    """Check one lifecycle move and return the new status, or raise ``IllegalTransition``."""
    if to not in STATUSES:
        raise IllegalTransition(f"{to!r} is not a claim status; statuses: {', '.join(STATUSES)}")
    current = statuses[-1] if statuses else None
    if current == "capped" and to == "claimed":
        if reevaluation:
            return "claimed"
        raise IllegalTransition(
            "a capped claim is final unless it is re-evaluated against the caps"
        )
    allowed = allowed_next(statuses)
    if to not in allowed:
        where = f"from {current}" if current else "a new claim"
        options = ", ".join(allowed) or "nothing (it is final)"
        raise IllegalTransition(
            f"cannot move a claim {where} to {to}; {where} it can go to: {options}"
            if current
            else f"{where} must start as claimed or capped, not {to}"
        )
    return to  # type: ignore[return-value]
