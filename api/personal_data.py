"""The personal-data store: the only place names, NHS numbers, dates of birth, contact
details, "what matters to me" and case notes are kept, encrypted at rest, every read
and write audited.

Records are encrypted with Fernet under a key ring (``LINKWAY_PII_KEYS``, newest key
first). Rotation: prepend a new key, call ``rotate`` (every record and note is
re-encrypted and re-indexed under the newest key), then drop the old key. A person is
found again by a keyed HMAC of the NHS number (a blind index) within one Tier One
partner's records, looked up under every key in the ring so that it works before,
during and after a rotation; without a key it cannot be enumerated, and it never
leaves this table.

Audit: a write's audit row commits in the write's own transaction; a read's audit row
commits before the data is decrypted, and if it cannot be written the read fails
(``AuditFailed``). Elsewhere in Linkway a person is only the pseudonymous referral id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import Index
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, select

from events.nhs_number import ascii_nhs_number, nhs_number_is_valid
from infra.db import transaction
from infra.keyfile import generated_once
from infra.settings import Settings


class PersonRecord(SQLModel, table=True):
    __tablename__ = "personal_data"
    # One person, one case per Tier One partner: two requests racing to open a case for
    # the same new person cannot both store them (the loser joins the winner's case).
    # NULLs are distinct, so records without an NHS number are not constrained.
    __table_args__ = (
        Index("ux_personal_data_partner_nhs", "partner_id", "nhs_index", unique=True),
    )

    referral_id: str = Field(primary_key=True, max_length=64)
    # The Tier One partner whose case this is: re-entry matches only within it.
    partner_id: str = Field(default="", max_length=64, index=True)
    nhs_index: str | None = Field(default=None, index=True, max_length=64)
    ciphertext: bytes
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class NoteRecord(SQLModel, table=True):
    __tablename__ = "case_notes"

    note_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64, index=True)
    author_id: str = Field(max_length=64)
    partner_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    ciphertext: bytes


class EqualityRecord(SQLModel, table=True):
    """A person's equality monitoring answers (special-category data), encrypted like
    the rest; only ever read back one person at a time or as a suppressed aggregate."""

    __tablename__ = "equality_monitoring"

    referral_id: str = Field(primary_key=True, max_length=64)
    partner_id: str = Field(max_length=64, index=True)
    ciphertext: bytes
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC), index=True)
    actor_id: str = Field(max_length=64, index=True)
    partner_id: str = Field(max_length=64)
    action: str = Field(max_length=16)  # read | write | match | refused | aggregate
    resource: str = Field(default="person", max_length=16)  # person | notes | equality
    referral_id: str = Field(max_length=64, index=True)
    purpose: str = Field(max_length=64)


@dataclass(frozen=True)
class Access:
    """Who touches personal data, for which organisation, and why: the audit record."""

    actor_id: str
    partner_id: str
    purpose: str


@dataclass(frozen=True)
class NhsFinding:
    """One stored NHS number ``check_nhs_numbers`` found wanting, by pseudonymous ids:
    ``normalised`` (written in other digits or with separators; rewritten 0-9 and
    re-indexed), ``duplicate`` (it is the number of ``other``, another case of the same
    partner: one person with two cases, for an operator to merge or close; not indexed),
    ``invalid`` (not an NHS number even in ASCII digits: left as it is, for the link
    worker to correct)."""

    kind: str
    referral_id: str
    partner_id: str
    other: str = ""
    fixed: bool = False


class AuditFailed(RuntimeError):
    """The audit record could not be written, so the personal data was not read."""


def load_keys(settings: Settings) -> list[bytes]:
    if settings.pii_keys:
        return [k.strip().encode() for k in settings.pii_keys.split(",") if k.strip()]
    # Embedded default only: one key generated on first run, kept beside the data.
    return [generated_once(Path(settings.data_dir) / "pii.key", Fernet.generate_key).strip()]


class PersonalDataStore:
    def __init__(self, engine: Engine, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("the personal-data store needs at least one key")
        self.engine = engine
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        # One index key per encryption key: writes index under the newest, lookups try all.
        self._index_keys = [hashlib.sha256(b"linkway-nhs-index:" + k).digest() for k in keys]
        self._index_key = self._index_keys[0]

    def nhs_index(self, nhs_number: str, key: bytes | None = None) -> str:
        digest = hmac.new(key or self._index_key, nhs_number.encode(), hashlib.sha256)
        return digest.hexdigest()

    def digest(self, value: Any) -> str:
        """A keyed digest of personal data (e.g. to recognise a retried request)."""
        blob = json.dumps(value, sort_keys=True, default=str).encode()
        return hmac.new(self._index_key, blob, hashlib.sha256).hexdigest()

    def _seal(self, value: Any) -> bytes:
        return self._fernet.encrypt(json.dumps(value, default=str).encode())

    def _open(self, blob: bytes) -> Any:
        return json.loads(self._fernet.decrypt(blob))

    @staticmethod
    def _audit(
        session: Session, access: Access, action: str, resource: str, referral_id: str
    ) -> None:
        session.add(
            AuditRecord(
                actor_id=access.actor_id,
                partner_id=access.partner_id,
                action=action,
                resource=resource,
                referral_id=referral_id,
                purpose=access.purpose,
            )
        )

    def _audited_read(
        self, access: Access, resource: str, referral_id: str, action: str = "read"
    ) -> None:
        try:
            with transaction(self.engine) as session:
                self._audit(session, access, action, resource, referral_id)
        except SQLAlchemyError as exc:
            raise AuditFailed("the audit log could not be written") from exc

    def refused(self, referral_id: str, access: Access, resource: str = "person") -> None:
        """Record an attempt to read personal data that was refused (e.g. a provider
        asking for contact details after its handoff ended): information governance
        sees who kept trying, though nothing was disclosed."""
        self._audited_read(access, resource, referral_id, action="refused")

    # People -------------------------------------------------------------------------------

    def find_by_nhs_number(self, nhs_number: str, partner_id: str, access: Access) -> str | None:
        """The case this partner holds for the person, if any (audited when found)."""
        with Session(self.engine) as session:
            found = session.exec(
                select(PersonRecord.referral_id).where(
                    col(PersonRecord.nhs_index).in_(
                        [self.nhs_index(nhs_number, key) for key in self._index_keys]
                    ),
                    PersonRecord.partner_id == partner_id,
                )
            ).first()
        if found is not None:
            try:
                with transaction(self.engine) as session:
                    self._audit(session, access, "match", "person", found)
            except SQLAlchemyError as exc:
                raise AuditFailed("the audit log could not be written") from exc
        return found

    def match_nhs_number(self, nhs_number: str, access: Access) -> list[str]:
        """Every case held for the person, whichever Tier One partner holds it: a
        commissioner's feed (distal outcomes) covers the whole county. Each match is
        audited; only the pseudonymous referral ids leave this store."""
        with Session(self.engine) as session:
            found = list(
                session.exec(
                    select(PersonRecord.referral_id).where(
                        col(PersonRecord.nhs_index).in_(
                            [self.nhs_index(nhs_number, key) for key in self._index_keys]
                        )
                    )
                ).all()
            )
        if found:
            try:
                with transaction(self.engine) as session:
                    for referral_id in found:
                        self._audit(session, access, "match", "person", referral_id)
            except SQLAlchemyError as exc:
                raise AuditFailed("the audit log could not be written") from exc
        return sorted(found)

    def put(
        self,
        session: Session,
        referral_id: str,
        partner_id: str,
        person: dict[str, Any],
        access: Access,
    ) -> None:
        """Write in the caller's transaction, with its audit record in the same one."""
        nhs = person.get("nhs_number")
        record = session.get(PersonRecord, referral_id)
        if record is None:
            record = PersonRecord(referral_id=referral_id, partner_id=partner_id, ciphertext=b"")
        record.ciphertext = self._seal(person)
        record.nhs_index = self.nhs_index(nhs) if nhs else None
        record.updated_at = datetime.now(UTC)
        session.add(record)
        self._audit(session, access, "write", "person", referral_id)

    def replace(self, referral_id: str, partner_id: str, person: dict, access: Access) -> None:
        with transaction(self.engine) as session:
            self.put(session, referral_id, partner_id, person, access)

    def get(self, referral_id: str, access: Access) -> dict | None:
        """Read one person's data. The audit record commits first: no audit, no read."""
        self._audited_read(access, "person", referral_id)
        with Session(self.engine) as session:
            record = session.get(PersonRecord, referral_id)
            return None if record is None else dict(self._open(record.ciphertext))

    # Case notes ---------------------------------------------------------------------------

    def add_note(self, referral_id: str, text: str, access: Access, note_id: str = "") -> dict:
        note = NoteRecord(
            note_id=note_id or uuid.uuid4().hex,
            referral_id=referral_id,
            author_id=access.actor_id,
            partner_id=access.partner_id,
            ciphertext=self._seal(text),
        )
        with transaction(self.engine) as session:
            if session.get(NoteRecord, note.note_id) is None:
                session.add(note)
            self._audit(session, access, "write", "notes", referral_id)
        return self._note(note)

    def notes(self, referral_id: str, access: Access) -> list[dict]:
        self._audited_read(access, "notes", referral_id)
        with Session(self.engine) as session:
            rows = session.exec(
                select(NoteRecord)
                .where(NoteRecord.referral_id == referral_id)
                .order_by(col(NoteRecord.created_at), col(NoteRecord.note_id))
            )
            return [self._note(row) for row in rows]

    def _note(self, row: NoteRecord) -> dict:
        return {
            "note_id": row.note_id,
            "text": self._open(row.ciphertext),
            "author_id": row.author_id,
            "created_at": row.created_at,
        }

    def check_nhs_numbers(self, fix: bool = False, actor_id: str = "operator") -> list[NhsFinding]:
        """Find the NHS numbers stored before the API accepted ASCII digits only (and any
        record a past create race left un-indexed), and with ``fix`` normalise and
        re-index them in one transaction, each write audited. A normalised number that
        is another case's number is never indexed twice: it is reported as a duplicate."""
        findings: list[NhsFinding] = []
        with transaction(self.engine) as session:
            records = list(
                session.exec(select(PersonRecord).order_by(col(PersonRecord.updated_at)))
            )
            people = {r.referral_id: self._open(r.ciphertext) for r in records}
            # The cases already found by their number: they keep it.
            owner: dict[tuple[str, str], str] = {}
            for record in records:
                number = people[record.referral_id].get("nhs_number")
                normal = (
                    number and number == ascii_nhs_number(number) and nhs_number_is_valid(number)
                )
                if normal and record.nhs_index in self._indexes(number):
                    owner.setdefault((record.partner_id, number), record.referral_id)
            for record in records:
                person = people[record.referral_id]
                number = person.get("nhs_number")
                if not number or owner.get((record.partner_id, number)) == record.referral_id:
                    continue
                normal = ascii_nhs_number(number)
                if normal is None or not nhs_number_is_valid(normal):
                    findings.append(NhsFinding("invalid", record.referral_id, record.partner_id))
                    continue
                other = owner.get((record.partner_id, normal))
                kind = "duplicate" if other else "normalised"
                findings.append(
                    NhsFinding(kind, record.referral_id, record.partner_id, other or "", fix)
                )
                if not fix:
                    continue
                record.ciphertext = self._seal({**person, "nhs_number": normal})
                record.nhs_index = None if other else self.nhs_index(normal)
                record.updated_at = datetime.now(UTC)
                if not other:
                    owner[(record.partner_id, normal)] = record.referral_id
                session.add(record)
                access = Access(actor_id, record.partner_id, "data_quality")
                self._audit(session, access, "write", "person", record.referral_id)
        return findings

    def _indexes(self, nhs_number: str) -> set[str]:
        return {self.nhs_index(nhs_number, key) for key in self._index_keys}

    # Equality monitoring ------------------------------------------------------------------

    def put_equality(
        self, referral_id: str, partner_id: str, answers: dict[str, Any], access: Access
    ) -> None:
        """Replace the person's answers; the audit record commits with them."""
        with transaction(self.engine) as session:
            record = session.get(EqualityRecord, referral_id)
            if record is None:
                record = EqualityRecord(
                    referral_id=referral_id, partner_id=partner_id, ciphertext=b""
                )
            record.ciphertext = self._seal(answers)
            record.updated_at = datetime.now(UTC)
            session.add(record)
            self._audit(session, access, "write", "equality", referral_id)

    def equality(self, referral_id: str, access: Access) -> dict | None:
        self._audited_read(access, "equality", referral_id)
        with Session(self.engine) as session:
            record = session.get(EqualityRecord, referral_id)
            return None if record is None else dict(self._open(record.ciphertext))

    def equality_answers(self, partner_ids: list[str] | None, access: Access) -> list[dict]:
        """Every person's answers (of these partners), for an aggregate report only: the
        caller must never show them one by one. Audited once, as an aggregate read."""
        self._audited_read(access, "equality", "*", action="aggregate")
        stmt = select(EqualityRecord.ciphertext)
        if partner_ids is not None:
            stmt = stmt.where(col(EqualityRecord.partner_id).in_(partner_ids))
        with Session(self.engine) as session:
            return [dict(self._open(blob)) for blob in session.exec(stmt)]

    def rotate(self) -> int:
        """Re-encrypt (and re-index) every record and note under the newest key; returns
        how many. Afterwards the older keys can be dropped from the ring."""
        count = 0
        with transaction(self.engine) as session:
            records: list[PersonRecord | NoteRecord | EqualityRecord] = [
                *session.exec(select(PersonRecord)),
                *session.exec(select(NoteRecord)),
                *session.exec(select(EqualityRecord)),
            ]
            for record in records:
                record.ciphertext = self._fernet.rotate(record.ciphertext)
                if isinstance(record, PersonRecord) and record.nhs_index:
                    nhs = self._open(record.ciphertext).get("nhs_number")
                    record.nhs_index = self.nhs_index(nhs) if nhs else None
                count += 1
        return count
