"""The pathway's activity reads everything it needs before it writes anything: on SQLite
a transaction holds the database's one write lock from its first write to its commit,
and every other writer waits for it meanwhile (docs/benchmarks.md, P1). And it reads
each kind of row in one statement, whatever the batch holds: a round trip per row was
most of what the activity cost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from activities.readmodel import ActivityRow, EpisodeRow, HandoffRow, MeasurementRow, ReferralRow
from activities.transitions import TransitionActivities
from messaging.outbox import OutboxRow
from pathway import commands as cmd
from tests.unit.pathway_fixtures import ONS4_LOW, Case, at_stage, measure, session, wemwbs
from tests.unit.test_measurement_readmodel import _persist, transition_input
from workflows.models import RecordTransitionInput

pytestmark = pytest.mark.both_databases


def _statements(engine: Engine, run: Any) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:3]).upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_batch_reads_first_and_writes_together_at_the_commit(engine: Engine) -> None:
    case = at_stage("supported")  # a referral, its episode, a handoff, baseline measures
    _persist(engine, case)
    case.events.clear()
    case.later(days=42).do(cmd.RecordCheckin, on_track=True, measures=[wemwbs()])

    statements = _statements(engine, lambda: _persist(engine, case))

    writes = [i for i, s in enumerate(statements) if s.split()[0] in {"INSERT", "UPDATE", "DELETE"}]
    reads = [i for i, s in enumerate(statements) if s.startswith("SELECT")]
    assert writes and reads
    assert max(reads) < min(writes), statements
    with Session(engine) as session:
        referral = session.get(ReferralRow, "ref-1")
        assert referral is not None and referral.version == case.state.version
        assert session.exec(select(EpisodeRow)).all()
        assert session.exec(select(HandoffRow)).all()
        staged = session.exec(select(OutboxRow.event_id)).all()
    assert {event_id for event_id, _ in case.events} <= set(staged)


def _stored_case() -> Case:
    """A referral with a baseline of two measures and two handoffs."""
    return at_stage("supported", prescriptions=2, baseline=[wemwbs(), measure("ONS4", ONS4_LOW)])


def _a_busy_batch() -> RecordTransitionInput:
    """The next batch for that referral: a check-in with two measures, three attendance
    reports on each handoff and a logged activity."""
    case = _stored_case()
    case.events.clear()
    case.later(days=42).do(
        cmd.RecordCheckin, on_track=True, measures=[wemwbs(), measure("ONS4", ONS4_LOW)]
    )
    for handoff in (case.handoff(0), case.handoff(1)):
        for week in (1, 2, 3):
            case.fact(session(handoff, (case.now + timedelta(weeks=week)).date()))
    case.send(
        case.command(
            cmd.LogActivity,
            activity_type="phone",
            direct=True,
            started_at=case.now - timedelta(minutes=10),
            minutes=10,
        )
    )
    return transition_input(case)


def test_a_batch_reads_each_kind_of_row_in_one_statement(engine: Engine) -> None:
    before = _stored_case()
    _persist(engine, before)
    batch = _a_busy_batch()
    assert len(batch.events) >= 8 and len(batch.view.handoffs) == 2
    activity = TransitionActivities(engine, "urn:linkway:test")

    statements = _statements(engine, lambda: activity._record(batch))

    # The referral with its episodes, its handoffs, the event and measurement ids already
    # stored; then the logged activity's own row (after the writes: see _record).
    assert sum(s.startswith("SELECT") for s in statements) == 4, statements
    assert statements.count("INSERT INTO OUTBOX") == 1, statements
    # One write per table at most (the ORM sends rows of one table together), so the
    # count does not grow with the batch: referrals, episodes, handoffs, outbox,
    # measurements, activities.
    assert len(statements) <= 4 + 6, statements
    with Session(engine) as db:
        assert len(db.exec(select(OutboxRow.event_id)).all()) == len(before.events) + len(
            batch.events
        )
        assert len(db.exec(select(MeasurementRow)).all()) == 4  # two at baseline, two now
        assert len(db.exec(select(ActivityRow)).all()) == 1
        assert sorted(h.attended for h in db.exec(select(HandoffRow)).all()) == [3, 3]


def test_a_retried_batch_writes_nothing(engine: Engine) -> None:
    _persist(engine, _stored_case())
    batch = _a_busy_batch()
    activity = TransitionActivities(engine, "urn:linkway:test")
    first = activity._record(batch)
    seqs = _outbox(engine)

    statements = _statements(engine, lambda: activity._record(batch))  # after its commit

    assert first.events_written == len(batch.events)
    assert activity._record(batch).events_written == 0
    assert not [s for s in statements if s.split()[0] in {"INSERT", "UPDATE", "DELETE"}]
    assert _outbox(engine) == seqs


def _outbox(engine: Engine) -> list[tuple[int | None, str]]:
    with Session(engine) as db:
        return [(r.seq, r.event_id) for r in db.exec(select(OutboxRow).order_by(OutboxRow.seq))]
