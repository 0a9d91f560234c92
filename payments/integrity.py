"""The ledger's integrity: recompute the stored hash chain (``verify``), sign its head
(``checkpoint``, also taken every ``checkpoint_every`` entries by the consumer) and check
the chain still holds a checkpoint a contract manager kept (``verify_checkpoint``).

A row tampered with outside the code so that it no longer reads as an entry is reported
as the first broken entry, never skipped."""

from __future__ import annotations

from sqlmodel import Session

from infra.db import transaction
from payments import store
from payments.base import ENGINE_ACTOR, EngineBase
from payments.errors import LedgerBroken
from payments.ledger import Checkpoint, LedgerEntry, VerifyResult, make_checkpoint, verify
from payments.ledger import verify_against_checkpoint as verify_held
from payments.views import SignedCheckpoint


class LedgerIntegrity(EngineBase):
    def head(self) -> LedgerEntry | None:
        with Session(self.engine) as session:
            return self._ledger.head(session)

    def verify(self) -> VerifyResult:
        """Recompute the stored chain; name the first entry that does not fit."""
        with Session(self.engine) as session:
            entries, unreadable = self._ledger.chain(session)
        result = verify(entries)
        if result.ok and unreadable is not None:
            return VerifyResult(False, unreadable.seq, str(unreadable))
        return result

    def checkpoint(self, actor_id: str = ENGINE_ACTOR) -> SignedCheckpoint:
        """Sign the head of a chain that verifies, and keep the signature."""
        with transaction(self.engine) as session:
            self._ledger.lock(session)  # the head cannot move while it is signed
            entries, unreadable = self._ledger.chain(session)
            if unreadable is not None:
                raise LedgerBroken(f"cannot checkpoint a broken ledger: {unreadable}")
            try:
                signed = make_checkpoint(entries, self._key)
            except ValueError as exc:
                raise LedgerBroken(str(exc)) from None
            row = store.add_checkpoint(session, signed, actor_id)
            return SignedCheckpoint.model_validate(row, from_attributes=True)

    def checkpoint_if_due(self, every_entries: int | None = None) -> SignedCheckpoint | None:
        """A checkpoint when the head is ``every_entries`` (default: the engine's
        ``checkpoint_every``) past the last one: the periodic checkpoint."""
        every = every_entries or self.checkpoint_every
        with Session(self.engine) as session:
            head = self._ledger.head(session)
            last = store.last_checkpoint_seq(session)
        if head is None or head.seq - last < every:
            return None
        return self.checkpoint()

    def checkpoints(self) -> list[SignedCheckpoint]:
        with Session(self.engine) as session:
            rows = store.checkpoints(session)
        return [SignedCheckpoint.model_validate(row, from_attributes=True) for row in rows]

    def verify_checkpoint(self, checkpoint: Checkpoint) -> VerifyResult:
        """The stored chain verifies and still holds a checkpoint someone kept."""
        with Session(self.engine) as session:
            entries, unreadable = self._ledger.chain(session)
        result = verify_held(entries, checkpoint, self._key)
        if unreadable is not None and (result.ok or result.first_broken_seq == unreadable.seq):
            return VerifyResult(False, unreadable.seq, str(unreadable))
        return result
