"""A referral's measures are a read model of their own, written by the pathway's activity
in the transaction that stages the event carrying them, so the API never parses outbox
JSON to answer a read (and the outbox can be archived without losing them)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from activities.readmodel import MeasurementRow, rebuild_measurements
from activities.transitions import TransitionActivities
from events.catalogue import topic_for
from infra.db import transaction
from messaging.outbox import OutboxRow
from pathway import commands as cmd
from pathway.views import episodes, view
from tests.unit.pathway_fixtures import Case, at_stage, wemwbs
from workflows.models import OutgoingEvent, RecordTransitionInput


def transition_input(case: Case) -> RecordTransitionInput:
    """What the workflow hands the persistence activity for the case's last decision."""
    batch = [
        OutgoingEvent(
            event_id=event_id,
            type=data.TYPE,
            topic=topic_for(data),
            occurred_at=data.occurred_at,  # type: ignore[attr-defined]
            data=data.model_dump(mode="json"),
        )
        for event_id, data in case.events
    ]
    return RecordTransitionInput(view=view(case.state), episodes=episodes(case.state), events=batch)


def _persist(engine: Engine, case: Case) -> None:
    TransitionActivities(engine, "urn:linkway:test")._record(transition_input(case))


def _rows(engine: Engine) -> list[tuple[str, int, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(MeasurementRow).order_by(col(MeasurementRow.phase))).all()
        return [(r.referral_id, r.episode, r.phase, r.instrument) for r in rows]


def test_baseline_and_review_measures_land_beside_their_events(engine: Engine) -> None:
    case = at_stage("review")
    case.do(cmd.RecordReview, decision="ongoing_support", measures=[wemwbs()])
    _persist(engine, case)
    assert _rows(engine) == [("ref-1", 1, "baseline", "WEMWBS"), ("ref-1", 1, "review", "WEMWBS")]


def test_a_retried_activity_adds_no_measurement_twice(engine: Engine) -> None:
    case = at_stage("planning")
    _persist(engine, case)
    _persist(engine, case)
    assert _rows(engine) == [("ref-1", 1, "baseline", "WEMWBS")]


def test_rebuild_fills_the_table_from_the_outbox_without_duplicates(engine: Engine) -> None:
    case = at_stage("review")
    case.do(cmd.RecordReview, decision="ongoing_support", measures=[wemwbs()])
    _persist(engine, case)
    before = _rows(engine)
    with transaction(engine) as session:
        session.execute(delete(MeasurementRow))
    assert rebuild_measurements(engine, chunk=1) == 2
    assert rebuild_measurements(engine) == 0
    assert _rows(engine) == before
    with Session(engine) as session:  # the outbox was only read
        assert session.exec(select(OutboxRow)).first() is not None
