"""Co-funding: how each claim's amount is split between the contract's payers.

A contract may be paid by several payers (a commissioner 70%, the Life Chances Fund
30%). Shares are in basis points (1/100 of a percent, 7_000 is 70%) so a rate card never
holds a fraction; the split of an amount in pence is exact, largest remainder first, ties
to the payer listed first, so the parts always add up to the amount to the penny and the
same amount always splits the same way. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

WHOLE = 10_000  # basis points in 100%

Shares = tuple[tuple[str, int], ...]  # (payer id, pence), in the rate card's order


class HasShare(Protocol):
    @property
    def share_basis_points(self) -> int: ...


def split(amount_pence: int, payers: Mapping[str, HasShare]) -> Shares:
    """``amount_pence`` split by share; ``()`` for a contract that lists no payers, whose
    claims the commissioner pays whole. A negative amount (a reversal) splits as its
    positive counterpart, negated, so a reversal takes back exactly what each payer owed."""
    if not payers:
        return ()
    sign, amount = (-1 if amount_pence < 0 else 1), abs(amount_pence)
    exact = [(pid, amount * p.share_basis_points) for pid, p in payers.items()]
    parts = {pid: whole // WHOLE for pid, whole in exact}
    left = amount - sum(parts.values())
    by_remainder = sorted(range(len(exact)), key=lambda i: -(exact[i][1] % WHOLE))
    for i in by_remainder[:left]:
        parts[exact[i][0]] += 1
    return tuple((pid, sign * parts[pid]) for pid in payers)


def negated(shares: Shares) -> Shares:
    return tuple((pid, -pence) for pid, pence in shares)
