"""The activity log and mid-point measures in the read model: written by the pathway's
activity in the transaction that stages their events, each activity as its latest fact
says, and nothing counted twice when the activity is retried after its commit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from activities.readmodel import ActivityRow, MeasurementRow
from pathway import commands as cmd
from tests.unit.pathway_fixtures import WEMWBS_HIGH, Case, at_stage, wemwbs
from tests.unit.test_measurement_readmodel import _persist


def _activities(engine: Engine) -> list[tuple[str, int, bool]]:
    with Session(engine) as session:
        rows = session.exec(select(ActivityRow).order_by(col(ActivityRow.started_at))).all()
        return [(r.activity_type, r.minutes, r.deleted) for r in rows]


def _log(case: Case, kind: str, minutes: int) -> str:
    command = case.command(
        cmd.LogActivity,
        activity_type=kind,
        direct=True,
        started_at=case.now - timedelta(minutes=minutes),
        minutes=minutes,
    )
    case.send(command)
    return str(command.request_id)


def test_an_activity_row_follows_its_latest_fact_and_a_retry_changes_nothing(
    engine: Engine,
) -> None:
    case = at_stage("supported")
    visit = _log(case, "home_visit", 55)
    call = _log(case, "phone", 10)
    case.do(
        cmd.CorrectActivity,
        activity_id=visit,
        activity_type="home_visit",
        direct=True,
        started_at=case.now - timedelta(minutes=90),
        minutes=60,
    )
    case.do(cmd.DeleteActivity, activity_id=call, reason_code="logged_in_error")

    _persist(engine, case)
    _persist(engine, case)  # the activity retried after its commit

    assert _activities(engine) == [("home_visit", 60, False), ("phone", 10, True)]


def test_mid_point_measures_are_their_own_phase(engine: Engine) -> None:
    case = at_stage("supported")
    case.later(days=42).do(cmd.RecordCheckin, on_track=True, measures=[wemwbs(WEMWBS_HIGH)])
    _persist(engine, case)
    with Session(engine) as session:
        phases = session.exec(select(MeasurementRow.phase).order_by(col(MeasurementRow.phase)))
        assert list(phases) == ["baseline", "midpoint"]
