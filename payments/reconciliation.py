"""Reconciliation as the contract manager asks for it: the claims recomputed from the
consumed outcome events (by the pure ``payments.reconcile``, with the same rules the
engine runs) against the ledger, every difference to the penny.

The events are streamed from the store in batches and decided as they arrive (running
totals, reversals taken back where the ledger made them); then the ledger is read sorted
by claim key and merged with the expected claims, so a contract year of millions of
events holds one batch of rows plus what is compared of each expected claim (about 350
bytes a claim; the ledger's claims are never all held).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from events.outcome import OUTCOME_TYPES, OutcomeEvent
from events.referral import ReferralReentered
from infra.db import snapshot
from payments import event_store
from payments.base import EngineBase
from payments.claims import claim_id
from payments.reconcile import reconcile_in_key_order, reversals_after
from payments.views import DiscrepancyView, Reconciliation

# Called with (events decided so far, events in all) as the run goes.
Progress = Callable[[int, int], None]
_EVERY = 10_000  # events between progress reports


class Reconciling(EngineBase):
    def reconcile(self, progress: Progress | None = None) -> Reconciliation:
        """Recompute the claims from the consumed outcome events, in consumed order, and
        list every difference from the ledger, to the penny."""
        read = 0
        # One snapshot for every read: events consumed while it runs are in neither the
        # events read nor the ledger, never in one and not the other.
        with snapshot(self.engine) as session:
            starts = event_store.episode_starts(session, ReferralReentered.TYPE)
            # Where the ledger reversed claims, in its own order, for the replay to take
            # them back at the same points; the claims themselves are read after it.
            undo = reversals_after(self._ledger.reversals(session))
            total = event_store.count_consumed(session, OUTCOME_TYPES) if progress else 0

            def outcomes() -> Iterator[tuple[str, OutcomeEvent]]:
                nonlocal read
                # One typed parse per event: the stored JSON straight to its model.
                for event_id, data in event_store.typed_in_batches(session, OUTCOME_TYPES):
                    read += 1
                    if progress and read % _EVERY == 0:
                        progress(read, total)
                    if isinstance(data, OutcomeEvent):
                        yield event_id, data

            found, claims = reconcile_in_key_order(
                outcomes(),
                self.book,
                lambda: self._ledger.by_claim_key(session),
                starts,
                self.registry,
                undo,
            )
        if progress:
            progress(read, total)
        rows = [
            DiscrepancyView(claim_id=claim_id(d.key), **d.key._asdict(), **_plain(d)) for d in found
        ]
        problems = [d.problem for d in found]
        return Reconciliation(
            ok=not rows,
            outcome_events=read,
            expected_claims=claims - problems.count("unexpected") + problems.count("missing"),
            ledger_claims=claims,
            discrepancies=rows,
        )


def _plain(d: Any) -> dict[str, Any]:
    fields = ("problem", "expected_status", "actual_status", "expected_pence", "actual_pence")
    return {name: getattr(d, name) for name in (*fields, "detail")}
