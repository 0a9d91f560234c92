"""The payment ledger: append-only and hash-chained, so any change is detectable.

Each entry holds the previous entry's hash and its own: sha256 over the entry's
canonical JSON (sorted keys, no spaces, UTF-8, times in UTC with microseconds),
``prev_hash`` included. The first entry chains from ``GENESIS_HASH``. ``verify``
recomputes the chain and names the first entry that does not fit.

A rewritten chain (every hash recomputed after a change) still verifies on its own,
so a contract manager holds **checkpoints**: the head's seq and hash, signed with
HMAC-SHA256 under a key the engine's operators do not hold alone. A chain that does not
contain the checkpointed head any more fails ``verify_against_checkpoint``.

Pure: entries in, entries and results out; storing them is the database layer's job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import NAMESPACE_URL, uuid5

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from payments.claims import EntryKind

GENESIS_HASH = hashlib.sha256(b"linkway.payments.ledger.genesis.v1").hexdigest()
_CHECKPOINT_LABEL = "linkway.payments.ledger.checkpoint.v1"
_ENTRY_NAMESPACE = uuid5(NAMESPACE_URL, "https://linkway.example/payments/ledger")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("ledger times must carry a time zone")
    return moment.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class EntryBody(BaseModel):
    """What one ledger entry says: a claim made, capped, moved on, or reversed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract_id: str
    referral_id: str
    episode: int
    metric: str
    partner_id: str
    period: str  # the outcome's month, YYYY-MM
    kind: EntryKind  # the status the claim moves to, or "first_approval"
    amount_pence: StrictInt  # the claim's amount; negative for a reversal; 0 when capped
    rate_card_version: str
    evidence_event_ids: tuple[str, ...] = ()
    measurement_ids: tuple[str, ...] = ()
    reason: str = ""  # a cap's field name or a reason code; never free text
    # a co-funded claim's split: (payer, pence) adding up to amount_pence; empty when one
    # payer pays it whole. Outside the hash when empty, so entries written before
    # co-funding existed keep the hashes they were chained with.
    shares: tuple[tuple[str, StrictInt], ...] = ()
    actor_id: str = Field(min_length=1)
    occurred_at: UtcTime  # when the outcome happened
    recorded_at: UtcTime


class LedgerEntry(EntryBody):
    seq: int = Field(ge=1)
    entry_id: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    first_broken_seq: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    signature: str


def canonical(entry: EntryBody) -> bytes:
    """The bytes an entry's hash covers: every field except ``hash`` itself."""
    fields = {name: _plain(getattr(entry, name)) for name in type(entry).model_fields}
    fields.pop("hash", None)
    if not entry.shares:
        fields.pop("shares")
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: EntryBody) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def append(prev: LedgerEntry | None, body: EntryBody) -> LedgerEntry:
    """The next entry of the chain whose last entry is ``prev`` (None: an empty chain)."""
    seq = prev.seq + 1 if prev else 1
    prev_hash = prev.hash if prev else GENESIS_HASH
    entry_id = str(uuid5(_ENTRY_NAMESPACE, f"{seq}:{prev_hash}"))
    unsigned = LedgerEntry(
        **body.model_dump(), seq=seq, entry_id=entry_id, prev_hash=prev_hash, hash=""
    )
    return unsigned.model_copy(update={"hash": entry_hash(unsigned)})


def verify(entries: Sequence[LedgerEntry], after: LedgerEntry | None = None) -> VerifyResult:
    """Recompute the chain (or its tail after a trusted entry); report the first entry
    whose seq, link or contents do not fit."""
    expected_seq = after.seq + 1 if after else 1
    expected_prev = after.hash if after else GENESIS_HASH
    for entry in entries:
        if entry.seq != expected_seq:
            return VerifyResult(
                False, expected_seq, f"expected seq {expected_seq}, found {entry.seq}"
            )
        if entry.prev_hash != expected_prev:
            return VerifyResult(
                False, expected_seq, "prev_hash does not match the previous entry's hash"
            )
        if entry_hash(entry) != entry.hash:
            return VerifyResult(False, expected_seq, "the entry's contents do not match its hash")
        expected_seq, expected_prev = expected_seq + 1, entry.hash
    return VerifyResult(True)


def make_checkpoint(entries: Sequence[LedgerEntry], key: bytes) -> Checkpoint:
    """Sign the head of a chain that verifies; a broken chain is never checkpointed."""
    result = verify(entries)
    if not result.ok:
        broken = f"seq {result.first_broken_seq}: {result.reason}"
        raise ValueError(f"cannot checkpoint a broken ledger: {broken}")
    seq, head = (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS_HASH)
    return Checkpoint(seq, head, _sign(key, seq, head))


def verify_against_checkpoint(
    entries: Sequence[LedgerEntry], checkpoint: Checkpoint, key: bytes
) -> VerifyResult:
    """The chain verifies and still holds the checkpointed head at its seq."""
    expected = _sign(key, checkpoint.seq, checkpoint.head_hash)
    if not hmac.compare_digest(expected, checkpoint.signature):
        reason = "the checkpoint's signature is wrong: it was altered or made with another key"
        return VerifyResult(False, None, reason)
    result = verify(entries)
    if not result.ok:
        return result
    if checkpoint.seq == 0:
        return VerifyResult(True)
    if len(entries) < checkpoint.seq:
        return VerifyResult(
            False,
            len(entries) + 1,
            f"the ledger ends at seq {len(entries)}, before the checkpoint at seq "
            f"{checkpoint.seq}: entries were removed",
        )
    if entries[checkpoint.seq - 1].hash != checkpoint.head_hash:
        return VerifyResult(
            False,
            checkpoint.seq,
            f"entry {checkpoint.seq} differs from the checkpoint: the chain up to it was rewritten",
        )
    return VerifyResult(True)


def _sign(key: bytes, seq: int, head_hash: str) -> str:
    if not key:
        raise ValueError("a checkpoint key must not be empty")
    message = f"{_CHECKPOINT_LABEL}|{seq}|{head_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).isoformat(timespec="microseconds")
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
