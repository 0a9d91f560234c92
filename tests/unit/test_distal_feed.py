"""The distal-activity feed on a real database and personal-data store: rows matched by
NHS number and stored against the pseudonymous referral id only; malformed and unmatched
rows reported row by row; re-imports and corrections idempotent; the distal outcome stated
once, when both windows are complete and the after-window has closed."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from activities.readmodel import EpisodeRow
from api.personal_data import Access, PersonalDataStore, load_keys
from events import topics
from events.catalogue import parse
from events.outcome import DistalChange, EngagementAchieved
from events.referral import MeasureScores
from inbound.distal import DistalFeed, report_csv
from inbound.distal_consumer import DistalFeedConsumer
from inbound.distal_outcomes import DistalOutcomes
from infra.db import transaction
from infra.settings import Settings
from messaging import outbox
from messaging.consumer import Inbound
from ops import cli
from pathway import distal

pytestmark = pytest.mark.both_databases

NHS = "9434765919"  # the person Linkway supports (referral r-1)
NOBODY = "9434765013"  # valid, but no case
FEED = Access("distal-feed", "commissioner", "distal_outcome_feed")
REFERRED = datetime(2027, 3, 10, 9, tzinfo=UTC)  # windows Sep 2026-Feb 2027, Apr-Sep 2027
CLOSED = date(2027, 10, 5)


def setup(engine: Engine) -> DistalFeed:
    people = PersonalDataStore(engine, [Fernet.generate_key()])
    with transaction(engine) as session:
        people.put(session, "r-1", "north-wellbeing", {"nhs_number": NHS}, FEED)
    open_episode(engine, 1, REFERRED)
    return DistalFeed(
        engine,
        lambda nhs: people.match_nhs_number(nhs, FEED),
        DistalOutcomes(engine, 6, "urn:linkway:pathway"),
        source="icb-warehouse",
    )


def open_episode(engine: Engine, number: int, at: datetime, engaged: bool = True) -> None:
    with transaction(engine) as session:
        session.add(
            EpisodeRow(
                referral_id="r-1", number=number, stage="planning", opened_at=at, source="gp"
            )
        )
        if not engaged:
            return
        baseline = MeasureScores(
            measurement_id=f"m-{number}",
            instrument="WEMWBS",
            version="1.0",
            raw={},
            derived={"total": 40},
            administered_at=at,
        )
        fact = EngagementAchieved(
            referral_id="r-1",
            episode=number,
            partner_id="north-wellbeing",
            locality="oswestry",
            occurred_at=at,
            evidence_event_ids=["ev-assessed"],
            consent_recorded=False,
            consent_purposes=["payment_evidence", "evaluation"],
            baseline=[baseline],
        )
        env = outbox.to_envelope(fact, "r-1", "urn:linkway:pathway", f"eng-{number}", at)
        outbox.add(session, env, topics.OUTCOMES)


def rows(first: str, counts: list[int], nhs: str = NHS, measure: str = "gp_appointments") -> str:
    lines = [
        f"{nhs},{measure},{distal.add_months(first, n)},{c},{first}-{n}"
        for n, c in enumerate(counts)
    ]
    return "\n".join(lines) + "\n"


HEADER = "nhs_number,measure,month,count,row_id\n"
# 2 a month before (12), 5 in the referral's own month (in neither window), 1 a month after
WHOLE = HEADER + rows("2026-09", [2] * 6 + [5] + [1] * 6)


def stated(engine: Engine) -> list[DistalChange]:
    with Session(engine) as session:
        payloads = session.exec(
            select(outbox.OutboxRow.payload).where(outbox.OutboxRow.type == DistalChange.TYPE)
        ).all()
    return [parse(p.encode())[1] for p in payloads]  # type: ignore[misc]


def test_a_complete_feed_states_the_change_once_with_the_engagements_consent(
    engine: Engine,
) -> None:
    feed = setup(engine)
    results = feed.import_csv(WHOLE, today=CLOSED)
    assert {r.status for r in results} == {"stored"}
    (change,) = stated(engine)
    assert (change.before_count, change.after_count, change.window_months) == (12, 6, 6)
    assert (change.before_from, change.after_to) == (date(2026, 9, 1), date(2027, 9, 30))
    assert change.occurred_at == datetime(2027, 10, 1, tzinfo=UTC)
    assert change.consent_purposes == ["payment_evidence", "evaluation"]
    assert change.evidence_event_ids == ["eng-1"]
    again = feed.import_csv(WHOLE, today=CLOSED)
    assert {r.status for r in again} == {"unchanged"} and len(stated(engine)) == 1


def test_malformed_and_unmatched_rows_are_reported_by_line_without_the_nhs_number(
    engine: Engine,
) -> None:
    feed = setup(engine)
    bad = HEADER + f"{NHS[:9]}0,gp_appointments,2027-01,2,x1\n{NHS},bed_days,2027-13,-1,x2\n"
    bad += f"{NOBODY},gp_appointments,2027-01,2,x3\n"
    results = feed.import_csv(bad, today=CLOSED)
    assert [(r.row, r.row_id, r.status) for r in results] == [
        ("line 2", "x1", "malformed"),
        ("line 3", "x2", "malformed"),
        ("line 4", "x3", "unmatched"),
    ]
    assert results[0].reason.startswith("nhs_number: not a valid NHS number")
    assert "measure: must be one of" in results[1].reason and "month:" in results[1].reason
    report = report_csv(results)
    assert NHS not in report and NOBODY not in report and "r-1" not in report


def test_a_wrong_header_is_one_malformed_row(engine: Engine) -> None:
    (result,) = setup(engine).import_csv("nhs,measure,month,count\n1,2,3,4\n", today=CLOSED)
    assert (result.status, result.reason) == (
        "malformed",
        "missing columns: nhs_number; unknown columns: nhs",
    )


def test_a_corrected_row_replaces_the_count_and_an_older_copy_loses(engine: Engine) -> None:
    feed = setup(engine)
    head = "nhs_number,measure,month,count,extracted_at\n"
    first = feed.import_csv(head + f"{NHS},gp_appointments,2027-04,3,2027-05-02T06:00Z\n")
    fixed = feed.import_csv(head + f"{NHS},gp_appointments,2027-04,1,2027-05-09T06:00Z\n")
    late = feed.import_csv(head + f"{NHS},gp_appointments,2027-04,3,2027-05-02T06:00Z\n")
    assert [r.status for r in (*first, *fixed, *late)] == ["stored", "corrected", "stale"]
    with engine.connect() as conn:
        count, revision = conn.execute(
            text("SELECT count, revision FROM distal_activity WHERE month = '2027-04'")
        ).one()
    assert (count, revision) == (1, 2)


def test_no_data_for_a_month_states_nothing_until_it_comes(engine: Engine) -> None:
    feed = setup(engine)
    feed.import_csv(HEADER + rows("2026-09", [2] * 6 + [5, 1, 1]) + rows("2027-07", [0, 0, 0]))
    partial = feed.import_csv(HEADER + rows("2026-09", [2]), today=CLOSED)
    assert partial[0].status == "unchanged" and stated(engine) == []  # 2027-06 never came
    feed.import_csv(HEADER + rows("2027-06", [4]), today=CLOSED)
    (change,) = stated(engine)
    assert (change.before_count, change.after_count) == (12, 6)


def test_nothing_is_stated_before_the_window_closes_and_close_states_it(engine: Engine) -> None:
    feed = setup(engine)
    feed.import_csv(WHOLE, today=date(2027, 9, 30))
    assert stated(engine) == []
    assert feed.outcomes.state_all(today=CLOSED) == 1
    assert feed.outcomes.state_all(today=CLOSED) == 0 and len(stated(engine)) == 1


def test_a_correction_after_the_outcome_was_stated_is_reported(engine: Engine) -> None:
    feed = setup(engine)
    feed.import_csv(WHOLE, today=CLOSED)
    (result,) = feed.import_csv(HEADER + rows("2027-04", [3]), today=CLOSED)
    assert result.status == "corrected" and "dispute" in result.reason
    assert stated(engine)[0].after_count == 6  # stated once, as it was


def test_a_re_entered_person_is_compared_around_each_episodes_referral(engine: Engine) -> None:
    feed = setup(engine)
    open_episode(engine, 2, datetime(2027, 11, 20, tzinfo=UTC))  # windows May-Oct 2027, Dec-May
    never = datetime(2028, 9, 1, tzinfo=UTC)
    open_episode(engine, 3, never, engaged=False)  # not engaged: never compared
    feed.import_csv(HEADER + rows("2026-09", [2] * 6 + [5] + [1] * 6 + [3] * 2 + [0] * 17))
    assert feed.outcomes.state_all(today=date(2029, 6, 1)) == 2
    first, second = sorted(stated(engine), key=lambda c: c.episode)
    assert (first.episode, first.before_count, first.after_count) == (1, 12, 6)
    # episode 2: May-Sep 2027 at 1 and Oct at 3 (Nov, its own month, in neither), against
    # Dec 2027-May 2028 at 0
    assert (second.episode, second.before_count, second.after_count) == (2, 8, 0)


def test_the_nhs_number_is_stored_nowhere_but_the_personal_data_store(engine: Engine) -> None:
    setup(engine).import_csv(WHOLE + f"{NOBODY},gp_appointments,2027-01,2,x\n", today=CLOSED)
    with engine.connect() as conn:
        tables = [
            t for t in inspect(engine).get_table_names() if t not in ("personal_data", "audit_log")
        ]
        dump = repr([conn.execute(text(f'SELECT * FROM "{t}"')).fetchall() for t in tables])
        audits = conn.execute(text("SELECT action, actor_id FROM audit_log")).fetchall()
    assert NHS not in dump and NOBODY not in dump
    assert ("match", "distal-feed") in audits  # every match is audited


def test_linkway_distal_import_reports_each_row_and_states_what_is_due(
    settings: Settings, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = PersonalDataStore(engine, load_keys(settings))  # the keys the command reads
    with transaction(engine) as session:
        people.put(session, "r-1", "north-wellbeing", {"nhs_number": NHS}, FEED)
    open_episode(engine, 1, REFERRED)
    upload = tmp_path / "gp-2027-09.csv"
    upload.write_text(WHOLE + f"{NOBODY},gp_appointments,2027-01,2,z9\n", encoding="utf-8")

    def run(action: str, file: str | None = None) -> int:
        args = argparse.Namespace(action=action, file=file, source="icb", report=None, today=CLOSED)
        return cli.distal(settings, args)

    assert run("import", str(upload)) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "row,row_id,status,reason"
    assert "line 15,z9,unmatched,no case for this NHS number" in out
    assert "14 rows: 13 stored, 1 unmatched" in err and NHS not in out + err
    assert len(stated(engine)) == 1
    assert run("close") == 0 and len(stated(engine)) == 1
    upload.write_text("nhs_number,measure,month,count\nnope,gp,2027,x\n", encoding="utf-8")
    assert run("import", str(upload)) == 1  # a malformed row: exit 1 for the sender's script


def test_a_record_delivered_again_after_a_crash_before_stating_states_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = setup(engine)
    feed.import_csv(HEADER + rows("2026-09", [2] * 6 + [5] + [1] * 5), today=CLOSED)
    last = {"nhs_number": NHS, "measure": "gp_appointments", "month": "2027-09", "count": "1"}

    def crash(*_: object) -> None:
        raise OSError("the process died between storing the row and stating the outcome")

    with monkeypatch.context() as patched:
        patched.setattr(feed.outcomes, "state", crash)
        with pytest.raises(OSError):
            feed.apply("linkway.distal.activity[0]@12", last, CLOSED)  # offset not committed
    assert stated(engine) == []
    again = feed.apply("linkway.distal.activity[0]@12", last, CLOSED)  # Kafka delivers again
    assert again.status == "unchanged" and len(stated(engine)) == 1


def test_an_unchanged_count_extracted_later_still_beats_an_older_copy(engine: Engine) -> None:
    feed = setup(engine)
    head = "nhs_number,measure,month,count,extracted_at\n"
    sent = [("3", "2027-05-02T06:00Z"), ("3", "2027-05-09T06:00Z"), ("5", "2027-05-05T06:00Z")]
    statuses = [
        feed.import_csv(head + f"{NHS},gp_appointments,2027-04,{count},{at}\n")[0].status
        for count, at in sent
    ]
    assert statuses == ["stored", "unchanged", "stale"]


class Recorded:
    """Stands where the broker's dead letters go: what would have been published."""

    def __init__(self) -> None:
        self.sent: list[tuple[Inbound, str]] = []

    async def publish(self, message: Inbound, reason: str) -> None:
        self.sent.append((message, reason))


async def test_a_refused_record_is_dead_lettered_without_nhs_number_key_or_extra_fields(
    engine: Engine,
) -> None:
    dead = Recorded()
    consumer = DistalFeedConsumer(setup(engine), dead)  # type: ignore[arg-type]
    consumer.today = CLOSED
    good = {"nhs_number": NHS, "measure": "gp_appointments", "month": "2027-01", "count": 1}
    records = [
        {**good, "nhs_number": NOBODY, "row_id": "r9"},
        {**good, "count": -1, "given_name": "Ottoline"},
        good,
    ]
    for offset, record in enumerate(records):
        value = json.dumps(record).encode()
        await consumer(Inbound("linkway.distal.activity", 0, offset, NHS.encode(), value))
    await consumer(Inbound("linkway.distal.activity", 0, 9, None, b"{not json"))
    assert [reason.split(":")[0] for _, reason in dead.sent] == [
        "unmatched",
        "malformed",
        "malformed",
    ]
    everything = b"".join(m.value for m, _ in dead.sent) + repr(dead.sent).encode()
    assert NHS.encode() not in everything and NOBODY.encode() not in everything
    assert b"Ottoline" not in everything and all(m.key is None for m, _ in dead.sent)
    assert json.loads(dead.sent[0][0].value) == {
        "measure": "gp_appointments",
        "month": "2027-01",
        "count": 1,
        "row_id": "r9",
    }
