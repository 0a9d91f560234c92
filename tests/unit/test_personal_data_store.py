"""The personal-data store: encrypted at rest, audited, rotatable, scoped re-entry."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.personal_data import (
    Access,
    AuditFailed,
    AuditRecord,
    NoteRecord,
    PersonalDataStore,
    PersonRecord,
)
from events.nhs_number import nhs_number_is_valid
from infra.db import transaction

PERSON = {"given_name": "Ottoline", "family_name": "Quennell", "nhs_number": "9434765919"}
NURSE = Access("lw-1", "north-wellbeing", "direct_care")


def put(store: PersonalDataStore, referral_id: str, partner: str = "north-wellbeing") -> None:
    with transaction(store.engine) as session:
        store.put(session, referral_id, partner, PERSON, NURSE)


def raw_bytes(engine: Engine) -> bytes:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM personal_data")).fetchall()
        rows += conn.execute(text("SELECT * FROM case_notes")).fetchall()
    return repr(rows).encode()


def test_nhs_number_check_digit() -> None:
    assert nhs_number_is_valid("9434765919")
    assert not nhs_number_is_valid("9434765918")
    assert not nhs_number_is_valid("943476591")


def test_people_and_notes_are_encrypted_at_rest(engine: Engine) -> None:
    store = PersonalDataStore(engine, [Fernet.generate_key()])
    put(store, "r-1")
    store.add_note("r-1", "Ottoline likes the Tuesday walk", NURSE)
    stored = raw_bytes(engine)
    for secret in (b"Ottoline", b"Quennell", b"9434765919", b"Tuesday walk"):
        assert secret not in stored
    assert store.get("r-1", NURSE) == PERSON
    assert [n["text"] for n in store.notes("r-1", NURSE)] == ["Ottoline likes the Tuesday walk"]


def test_every_read_and_write_is_audited_with_who_partner_what_and_why(engine: Engine) -> None:
    store = PersonalDataStore(engine, [Fernet.generate_key()])
    put(store, "r-1")
    store.get("r-1", Access("lw-2", "north-wellbeing", "safeguarding"))
    store.add_note("r-1", "note", NURSE)
    store.notes("r-1", NURSE)
    store.find_by_nhs_number("9434765919", "north-wellbeing", Access("gp-9", "gp-x", "referral"))
    with Session(engine) as session:
        trail = [
            (a.actor_id, a.partner_id, a.action, a.resource, a.referral_id, a.purpose)
            for a in session.exec(select(AuditRecord).order_by(AuditRecord.id))  # type: ignore[arg-type]
        ]
    assert trail == [
        ("lw-1", "north-wellbeing", "write", "person", "r-1", "direct_care"),
        ("lw-2", "north-wellbeing", "read", "person", "r-1", "safeguarding"),
        ("lw-1", "north-wellbeing", "write", "notes", "r-1", "direct_care"),
        ("lw-1", "north-wellbeing", "read", "notes", "r-1", "direct_care"),
        ("gp-9", "gp-x", "match", "person", "r-1", "referral"),
    ]


def test_if_the_audit_record_cannot_be_written_the_read_fails(engine: Engine) -> None:
    store = PersonalDataStore(engine, [Fernet.generate_key()])
    put(store, "r-1")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_log RENAME TO audit_log_gone"))
    with pytest.raises(AuditFailed):
        store.get("r-1", NURSE)
    with pytest.raises(AuditFailed):
        store.notes("r-1", NURSE)


def test_key_rotation_keeps_every_record_readable_and_findable(engine: Engine) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    put(PersonalDataStore(engine, [old]), "r-1")
    PersonalDataStore(engine, [old]).add_note("r-1", "before rotation", NURSE)

    during = PersonalDataStore(engine, [new, old])
    assert during.find_by_nhs_number("9434765919", "north-wellbeing", NURSE) == "r-1"
    assert during.rotate() == 2

    after = PersonalDataStore(engine, [new])  # the old key is gone
    assert after.get("r-1", NURSE) == PERSON
    assert [n["text"] for n in after.notes("r-1", NURSE)] == ["before rotation"]
    assert after.find_by_nhs_number("9434765919", "north-wellbeing", NURSE) == "r-1"
    with Session(engine) as session:
        record = session.get(PersonRecord, "r-1")
    assert record is not None
    with pytest.raises(InvalidToken):  # nothing is left under the old key
        Fernet(old).decrypt(record.ciphertext)


def test_a_person_is_matched_only_within_the_partner_holding_the_case(engine: Engine) -> None:
    store = PersonalDataStore(engine, [Fernet.generate_key()])
    put(store, "r-north", "north-wellbeing")
    assert store.find_by_nhs_number("9434765919", "north-wellbeing", NURSE) == "r-north"
    assert store.find_by_nhs_number("9434765919", "south-wellbeing", NURSE) is None
    with Session(engine) as session:
        assert session.exec(select(NoteRecord)).first() is None


def test_nhs_numbers_stored_in_other_digits_are_normalised_or_flagged(engine: Engine) -> None:
    """Before the API took ASCII digits only, a fullwidth or Arabic-Indic NHS number was
    stored as sent and indexed under a different blind index. ``check_nhs_numbers`` (the
    ``linkway people check`` command) finds them; with ``fix`` it rewrites them 0-9 and
    re-indexes them, except one that is another case's number (a duplicate, flagged)."""
    store = PersonalDataStore(engine, [Fernet.generate_key()])
    wide = "".join(chr(0xFF10 + int(d)) for d in "9434765919")  # fullwidth
    arabic = "".join(chr(0x0660 + int(d)) for d in "4010232137")  # Arabic-Indic
    stored = {
        "r-ascii": "9434765919",
        "r-wide": wide,
        "r-arabic": arabic,
        "r-spaced": "382 896 6551",
        "r-bad": "12345",
        "r-none": None,
    }
    with transaction(engine) as session:
        for rid, number in stored.items():
            store.put(session, rid, "north-wellbeing", {**PERSON, "nhs_number": number}, NURSE)

    found = store.check_nhs_numbers()
    assert {(f.kind, f.referral_id, f.other) for f in found} == {
        ("duplicate", "r-wide", "r-ascii"),
        ("normalised", "r-arabic", ""),
        ("normalised", "r-spaced", ""),
        ("invalid", "r-bad", ""),
    }
    assert store.find_by_nhs_number("4010232137", "north-wellbeing", NURSE) is None  # unfixed

    store.check_nhs_numbers(fix=True)
    assert store.find_by_nhs_number("4010232137", "north-wellbeing", NURSE) == "r-arabic"
    assert store.find_by_nhs_number("3828966551", "north-wellbeing", NURSE) == "r-spaced"
    assert store.find_by_nhs_number("9434765919", "north-wellbeing", NURSE) == "r-ascii"
    assert store.get("r-wide", NURSE)["nhs_number"] == "9434765919"  # type: ignore[index]
    with Session(engine) as session:
        assert session.get(PersonRecord, "r-wide").nhs_index is None  # type: ignore[union-attr]
        fixes = session.exec(select(AuditRecord).where(AuditRecord.purpose == "data_quality")).all()
    assert {a.referral_id for a in fixes} == {"r-wide", "r-arabic", "r-spaced"}
    # What remains needs an operator: the second case, and the number no one can read.
    again = store.check_nhs_numbers(fix=True)
    assert {(f.kind, f.referral_id) for f in again} == {
        ("duplicate", "r-wide"),
        ("invalid", "r-bad"),
    }


def test_equality_answers_are_encrypted_rotated_and_read_as_one_audited_aggregate(
    engine: Engine,
) -> None:
    old = Fernet.generate_key()
    store = PersonalDataStore(engine, [old])
    answers = {"ethnicity": "white_roma", "ethnicity_write_in": "Ottoline's own words"}
    store.put_equality("r-1", "north-wellbeing", answers, NURSE)
    store.put_equality("r-2", "south-wellbeing", {"carer": "yes"}, NURSE)
    with engine.connect() as conn:
        stored = repr(conn.execute(text("SELECT * FROM equality_monitoring")).fetchall())
    assert "white_roma" not in stored and "Ottoline" not in stored
    new = Fernet.generate_key()
    assert PersonalDataStore(engine, [new, old]).rotate() == 2
    newest_only = PersonalDataStore(engine, [new])  # the old key dropped after rotating
    assert newest_only.equality("r-1", NURSE) == answers
    report = Access("cm-1", "commissioner", "equality_report")
    assert newest_only.equality_answers(["north-wellbeing"], report) == [answers]
    assert len(newest_only.equality_answers(None, report)) == 2
    with Session(engine) as session:
        audits = session.exec(select(AuditRecord).where(AuditRecord.resource == "equality")).all()
    assert [(a.action, a.referral_id) for a in audits][-2:] == [("aggregate", "*")] * 2
