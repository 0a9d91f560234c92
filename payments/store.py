"""The payment engine's tables, and the only code that writes them.

- ``ledger_entries``: the hash-chained ledger (``payments.ledger``), one row per entry;
- ``outcome_events``: every event the engine consumed (``payments.event_store``);
- ``ledger_checkpoints``: signed heads of the chain;
- ``ledger_lock``: one row that serialises appends (``LedgerRepository.lock``).

The first three are insert-only. This module has no update or delete path for them,
and ``payments.guards`` makes the database refuse one: triggers on SQLite and
PostgreSQL, installed when the tables are created and idempotent to re-run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Index, Select, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import RowMapping
from sqlmodel import Field, Session, SQLModel, col, select

from infra.db import chunks
from payments import event_store, guards  # noqa: F401  (event_store: its table is guarded below)
from payments.claims import ClaimKey, ClaimRecord, claim_id
from payments.columns import utc, utc_column
from payments.entries import current_claims
from payments.errors import UnreadableEntry
from payments.ledger import GENESIS_HASH, Checkpoint, EntryBody, LedgerEntry, append


class LedgerRow(SQLModel, table=True):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_claim", "claim_id", "seq"),
        Index("ix_ledger_statement", "contract_id", "partner_id", "period"),
    )

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    entry_id: str = Field(unique=True, max_length=36)
    # Unique: two appends that both read the same head cannot both commit.
    prev_hash: str = Field(unique=True, max_length=64)
    hash: str = Field(unique=True, max_length=64)
    # Derived from the claim key, so outside the hash; a lookup aid checked on every read.
    claim_id: str = Field(max_length=36)
    contract_id: str = Field(max_length=64)
    referral_id: str = Field(max_length=64)
    episode: int
    metric: str = Field(max_length=16)
    partner_id: str = Field(max_length=64)
    period: str = Field(max_length=7)
    kind: str = Field(max_length=16)
    amount_pence: int
    rate_card_version: str = Field(max_length=64)
    evidence_event_ids: str = "[]"  # JSON arrays, in the entry's order
    measurement_ids: str = "[]"
    reason: str = ""
    actor_id: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_type=utc_column())
    recorded_at: datetime = Field(sa_type=utc_column())
    # JSON [[payer, pence], ...] of a co-funded claim. Last, with a server default, as
    # migration 0002 added it to ledgers that already had entries.
    shares: str = Field(default="[]", sa_column_kwargs={"server_default": "[]"})


class CheckpointRow(SQLModel, table=True):
    __tablename__ = "ledger_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True)
    head_hash: str = Field(max_length=64)
    signature: str = Field(max_length=64)
    actor_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=utc_column())


class LedgerLock(SQLModel, table=True):
    __tablename__ = "ledger_lock"

    name: str = Field(primary_key=True, max_length=16)
    appends: int = 0


class LedgerRepository:
    """Appends to and reads the ledger, inside the caller's session."""

    def __init__(self) -> None:
        # Claims folded up to (seq, hash); see ``claims``.
        self._claims: dict[ClaimKey, ClaimRecord] = {}
        self._at: tuple[int, str] = (0, GENESIS_HASH)
        self._mutex = threading.Lock()

    def lock(self, session: Session) -> None:
        """Serialise appends until the caller's transaction ends.

        PostgreSQL: ``SELECT ... FOR UPDATE`` of the lock row. SQLite has no row locks:
        a write to the lock row takes the database's single write lock, which is held to
        commit; it must come before any read the append depends on (the head, the claims).
        The unique ``prev_hash`` is the backstop if a caller forgets to lock.
        """
        where = col(LedgerLock.name) == guards.LOCK_NAME
        if session.get_bind().dialect.name == "postgresql":
            session.exec(select(LedgerLock.name).where(where).with_for_update()).one()
        else:
            session.execute(update(LedgerLock).where(where).values(appends=LedgerLock.appends + 1))

    def head(self, session: Session) -> LedgerEntry | None:
        stmt = _entry_columns().order_by(col(LedgerRow.seq).desc()).limit(1)
        row = session.execute(stmt).mappings().first()
        return _entry(row) if row else None

    def append(self, session: Session, body: EntryBody) -> LedgerEntry:
        self.lock(session)
        entry = append(self.head(session), body)
        session.add(_row(entry))
        session.flush()  # the next head read in this transaction sees it
        return entry

    def claims(self, session: Session) -> dict[ClaimKey, ClaimRecord]:
        """Every claim as it stands (``entries.current_claims``), folded incrementally:
        only the claims touched by entries after the last fold are recomputed, from their
        own entries. The fold is trusted only while the stored entry at its seq still has
        its hash, which the chain makes stand for every entry before it; otherwise (a
        rolled-back append, another database) it is rebuilt. Call it holding the lock."""
        with self._mutex:
            seq, head_hash = self._at
            if seq:
                stored = session.exec(select(LedgerRow.hash).where(LedgerRow.seq == seq))
                if stored.first() != head_hash:
                    self._claims, self._at, seq = {}, (0, GENESIS_HASH), 0
            stmt = _entry_columns().where(col(LedgerRow.seq) > seq).order_by(col(LedgerRow.seq))
            new = [_entry(row) for row in session.execute(stmt).mappings()]
            if new and not seq:
                self._claims = current_claims(new)
            elif new:
                for claim in {_claim_of(e) for e in new}:
                    self._claims.update(current_claims(self.entries(session, claim=claim)))
            if new:
                self._at = (new[-1].seq, new[-1].hash)
            return dict(self._claims)

    def chain(self, session: Session) -> tuple[list[LedgerEntry], UnreadableEntry | None]:
        """The entries up to the first row that cannot be read, and that row's problem."""
        entries: list[LedgerEntry] = []
        for row in session.execute(_entry_columns().order_by(col(LedgerRow.seq))).mappings():
            try:
                entries.append(_entry(row))
            except UnreadableEntry as exc:
                return entries, exc
        return entries, None

    def stream(
        self, session: Session, batch: int = 5_000, trusted: bool = False
    ) -> Iterator[LedgerEntry]:
        """The chain in order, ``batch`` rows at a time (reconciling millions of entries
        holds one batch, not the chain); raises ``UnreadableEntry`` like ``entries``.
        ``trusted``: build each entry from its typed columns without validating it again
        (reconciliation, which compares amounts and statuses; ``verify`` is what checks
        every entry and its hash)."""
        stmt = _entry_columns().order_by(col(LedgerRow.seq))
        # The session's connection, not the ORM: plain rows need none of its loading.
        rows = session.connection().execution_options(yield_per=batch).execute(stmt)
        for row in rows.mappings():
            yield _entry(row, trusted)

    def reversals(self, session: Session) -> Iterator[LedgerEntry]:
        """Of the chain, in order, only what ``reconcile.reversals_after`` reads to place
        each reversal: the reversed entries, each after the last claim entry (claimed or
        capped, with evidence) before it. Reconciliation reads this rather than the whole
        ledger a second time; reversals are few."""
        claim_entries = col(LedgerRow.kind).in_(("claimed", "capped"))
        reversed_ = select(LedgerRow.seq).where(LedgerRow.kind == "reversed")
        wanted: set[int] = set()
        for seq in list(session.exec(reversed_)):
            wanted.add(seq)
            prior = session.exec(  # the chain read backwards from the reversal
                select(LedgerRow.seq)
                .where(col(LedgerRow.seq) < seq, claim_entries)
                .where(col(LedgerRow.evidence_event_ids) != "[]")
                .order_by(col(LedgerRow.seq).desc())
                .limit(1)
            ).first()
            if prior is not None:
                wanted.add(prior)
        for chunk in chunks(wanted, 1_000):
            stmt = (
                _entry_columns().where(col(LedgerRow.seq).in_(chunk)).order_by(col(LedgerRow.seq))
            )
            for row in session.execute(stmt).mappings():
                yield _entry(row, trusted=True)

    def by_claim_key(self, session: Session, batch: int = 5_000) -> Iterator[LedgerEntry]:
        """``stream(trusted=True)`` sorted by claim key (contract, referral, episode,
        metric: as Python orders ``ClaimKey``s, so byte order on PostgreSQL), each claim's
        entries in ledger order: reconciliation merges it with the expected claims rather
        than holding the ledger's. The database sorts it (spilling to disk, not memory)."""
        postgres = session.get_bind().dialect.name == "postgresql"

        def text(column: Any) -> Any:
            return col(column).collate("C") if postgres else col(column)

        stmt = _entry_columns().order_by(
            text(LedgerRow.contract_id),
            text(LedgerRow.referral_id),
            col(LedgerRow.episode),
            text(LedgerRow.metric),
            col(LedgerRow.seq),
        )
        rows = session.connection().execution_options(yield_per=batch).execute(stmt)
        for row in rows.mappings():
            yield _entry(row, trusted=True)

    def entries(self, session: Session, claim: str | None = None) -> list[LedgerEntry]:
        """The chain in order (one claim's entries when ``claim`` is given); raises
        ``UnreadableEntry`` for a row that is not a valid entry."""
        stmt = _entry_columns().order_by(col(LedgerRow.seq))
        if claim is not None:
            stmt = stmt.where(col(LedgerRow.claim_id) == claim)
        return [_entry(row) for row in session.execute(stmt).mappings()]


def _claim_of(entry: EntryBody) -> str:
    return claim_id(ClaimKey(entry.contract_id, entry.referral_id, entry.episode, entry.metric))


def _row(entry: LedgerEntry) -> LedgerRow:
    fields = entry.model_dump()
    fields["evidence_event_ids"] = json.dumps(list(entry.evidence_event_ids))
    fields["measurement_ids"] = json.dumps(list(entry.measurement_ids))
    fields["shares"] = json.dumps([list(share) for share in entry.shares])
    return LedgerRow(**fields, claim_id=_claim_of(entry))


def _entry_columns() -> Select[Any]:
    """The ledger's columns as plain rows: building an ORM ``LedgerRow`` per entry only to
    copy it into a ``LedgerEntry`` was half the cost of reading a long ledger (P5)."""
    return sa_select(*LedgerRow.__table__.columns)  # type: ignore[attr-defined]


def _entry(row: RowMapping, trusted: bool = False) -> LedgerEntry:
    fields = {name: value for name, value in row.items() if name != "claim_id"}
    try:
        fields["evidence_event_ids"] = tuple(json.loads(row["evidence_event_ids"]))
        fields["measurement_ids"] = tuple(json.loads(row["measurement_ids"]))
        fields["occurred_at"] = utc(row["occurred_at"])
        fields["recorded_at"] = utc(row["recorded_at"])
        fields["shares"] = tuple(tuple(share) for share in json.loads(row["shares"]))
        if trusted:
            return LedgerEntry.model_construct(**fields)
        entry = LedgerEntry.model_validate(fields)
    except (ValueError, TypeError, ValidationError) as exc:
        raise UnreadableEntry(row["seq"], type(exc).__name__) from None
    if _claim_of(entry) != row["claim_id"]:
        raise UnreadableEntry(row["seq"], "its claim_id does not match its claim key")
    return entry


# --- checkpoints ----------------------------------------------------------------------------


def add_checkpoint(session: Session, checkpoint: Checkpoint, actor_id: str) -> CheckpointRow:
    row = CheckpointRow(
        seq=checkpoint.seq,
        head_hash=checkpoint.head_hash,
        signature=checkpoint.signature,
        actor_id=actor_id,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def checkpoints(session: Session) -> list[CheckpointRow]:
    return list(session.exec(select(CheckpointRow).order_by(col(CheckpointRow.id))))


def last_checkpoint_seq(session: Session) -> int:
    return session.exec(select(func.coalesce(func.max(CheckpointRow.seq), 0))).one()


# Now that the tables above (and the event store's) are in the metadata: create_tables
# installs their guards.
guards.listen()
