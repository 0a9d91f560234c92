"""The personal-data store: the only place names, NHS numbers, dates of birth, contact
details and notes are kept, encrypted at rest, each read and write audited.

Records are encrypted with Fernet under a key ring (newest key first; rotation is
prepending a key and calling ``rotate``). The person is found again by a keyed HMAC of
the NHS number (a blind index): without the key it cannot be enumerated, and it never
leaves this table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from infra.db import transaction
from infra.settings import Settings


class PersonRecord(SQLModel, table=True):
    __tablename__ = "personal_data"

    referral_id: str = Field(primary_key=True, max_length=64)
    nhs_index: str | None = Field(default=None, index=True, max_length=64)
    ciphertext: bytes
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC), index=True)
    actor_id: str = Field(max_length=64)
    partner_id: str = Field(max_length=64)
    action: str = Field(max_length=16)  # read | write
    referral_id: str = Field(max_length=64, index=True)
    purpose: str = Field(max_length=64)


def load_keys(settings: Settings) -> list[bytes]:
    if settings.pii_keys:
        return [k.strip().encode() for k in settings.pii_keys.split(",") if k.strip()]
    # Embedded default only: one key generated on first run, kept beside the data.
    path = Path(settings.data_dir) / "pii.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return [path.read_bytes().strip()]


class PersonalDataStore:
    def __init__(self, engine: Engine, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("the personal-data store needs at least one key")
        self.engine = engine
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        # The blind index must not change when keys rotate, so it is derived from the
        # oldest key in the ring (the last one), which stays until every record is rotated.
        self._index_key = hashlib.sha256(b"linkway-nhs-index:" + keys[-1]).digest()

    def nhs_index(self, nhs_number: str) -> str:
        return hmac.new(self._index_key, nhs_number.encode(), hashlib.sha256).hexdigest()

    def find_by_nhs_number(self, nhs_number: str) -> str | None:
        with Session(self.engine) as session:
            row = session.exec(
                select(PersonRecord.referral_id).where(
                    PersonRecord.nhs_index == self.nhs_index(nhs_number)
                )
            ).first()
            return row

    def put(
        self,
        session: Session,
        referral_id: str,
        person: dict[str, Any],
        actor_id: str,
        partner_id: str,
        purpose: str,
    ) -> None:
        """Write in the caller's transaction, with its audit record in the same one."""
        nhs = person.get("nhs_number")
        record = session.get(PersonRecord, referral_id)
        blob = self._fernet.encrypt(json.dumps(person, default=str).encode())
        if record is None:
            record = PersonRecord(referral_id=referral_id, ciphertext=blob)
        record.ciphertext = blob
        record.nhs_index = self.nhs_index(nhs) if nhs else None
        record.updated_at = datetime.now(UTC)
        session.add(record)
        session.add(
            AuditRecord(
                actor_id=actor_id,
                partner_id=partner_id,
                action="write",
                referral_id=referral_id,
                purpose=purpose,
            )
        )

    def get(self, referral_id: str, actor_id: str, partner_id: str, purpose: str) -> dict | None:
        """Read one person's data. The audit record commits first: no audit, no read."""
        with transaction(self.engine) as session:
            session.add(
                AuditRecord(
                    actor_id=actor_id,
                    partner_id=partner_id,
                    action="read",
                    referral_id=referral_id,
                    purpose=purpose,
                )
            )
        with Session(self.engine) as session:
            record = session.get(PersonRecord, referral_id)
            if record is None:
                return None
            return dict(json.loads(self._fernet.decrypt(record.ciphertext)))

    def rotate(self) -> int:
        """Re-encrypt every record under the newest key; returns how many."""
        count = 0
        with transaction(self.engine) as session:
            for record in session.exec(select(PersonRecord)):
                record.ciphertext = self._fernet.rotate(record.ciphertext)
                count += 1
        return count
