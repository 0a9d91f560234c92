"""The pathway's activity reads everything it needs before it writes anything: on SQLite
a transaction holds the database's one write lock from its first write to its commit,
and every other writer waits for it meanwhile (docs/benchmarks.md, P1)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from activities.readmodel import EpisodeRow, HandoffRow, ReferralRow
from messaging.outbox import OutboxRow
from pathway import commands as cmd
from tests.unit.pathway_fixtures import at_stage, wemwbs
from tests.unit.test_measurement_readmodel import _persist

pytestmark = pytest.mark.both_databases


def _statements(engine: Engine, run: Any) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.lstrip().split()[0].upper())

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

    writes = [i for i, s in enumerate(statements) if s in {"INSERT", "UPDATE", "DELETE"}]
    reads = [i for i, s in enumerate(statements) if s == "SELECT"]
    assert writes and reads
    assert max(reads) < min(writes), statements
    with Session(engine) as session:
        referral = session.get(ReferralRow, "ref-1")
        assert referral is not None and referral.version == case.state.version
        assert session.exec(select(EpisodeRow)).all()
        assert session.exec(select(HandoffRow)).all()
        staged = session.exec(select(OutboxRow.event_id)).all()
    assert {event_id for event_id, _ in case.events} <= set(staged)
