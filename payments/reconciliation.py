"""Reconciliation as the contract manager asks for it: the claims recomputed from the
consumed outcome events (by the pure ``payments.reconcile``, with the same rules the
engine runs) against the ledger, every difference to the penny."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from events.outcome import OUTCOME_TYPES
from events.referral import ReferralReentered
from payments import store
from payments.base import EngineBase, outcome_of
from payments.claims import claim_id
from payments.entries import current_claims
from payments.reconcile import reconcile, reversals_after
from payments.views import DiscrepancyView, Reconciliation


class Reconciling(EngineBase):
    def reconcile(self) -> Reconciliation:
        """Recompute the claims from the consumed outcome events, in consumed order, and
        list every difference from the ledger, to the penny."""
        with Session(self.engine) as session:
            history = store.consumed(session, types=OUTCOME_TYPES)
            starts = store.episode_starts(session, ReferralReentered.TYPE)
            entries = self._ledger.entries(session)
        ledger = current_claims(entries)
        outcomes = [(env.id, o) for env in history if (o := outcome_of(env)) is not None]
        undo = reversals_after(entries)
        found = reconcile(outcomes, self.book, ledger, starts, self.registry, undo)
        rows = [
            DiscrepancyView(claim_id=claim_id(d.key), **d.key._asdict(), **_plain(d)) for d in found
        ]
        problems = [d.problem for d in found]
        return Reconciliation(
            ok=not rows,
            outcome_events=len(outcomes),
            expected_claims=len(ledger) - problems.count("unexpected") + problems.count("missing"),
            ledger_claims=len(ledger),
            discrepancies=rows,
        )


def _plain(d: Any) -> dict[str, Any]:
    fields = ("problem", "expected_status", "actual_status", "expected_pence", "actual_pence")
    return {name: getattr(d, name) for name in (*fields, "detail")}
