"""The rebuild's lease (``reporting.lease``): while a rebuild holds it the reporting
consumer applies nothing (its transaction raises, and the consumer retries later with
its offset kept); a second rebuild is refused; a rebuild that lost the lease applies
nothing more. (Both at once on the real broker: tests/integration/test_reporting_rebuild.py.)"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from infra.db import transaction
from messaging.consumer import ProcessedEvent
from reporting import lease, rebuild
from tests.unit.reporting_fixtures import Person

pytestmark = pytest.mark.both_databases


def consumer_applies(engine: Engine) -> None:
    with transaction(engine) as session:
        lease.hold_off(session)


def test_the_consumer_holds_off_while_a_rebuild_holds_the_lease(engine: Engine) -> None:
    rebuild.ensure_tables(engine)
    lease.ensure_row(engine)
    consumer_applies(engine)  # no rebuild: it goes ahead
    held = lease.lease(engine)
    assert held.acquire()
    with pytest.raises(lease.RebuildRunning):
        consumer_applies(engine)
    assert not lease.lease(engine).acquire()  # a second rebuild: refused
    held.release()
    consumer_applies(engine)  # done: it carries on


def test_a_rebuild_that_lost_its_lease_applies_nothing_more(engine: Engine) -> None:
    rebuild.ensure_tables(engine)
    held = lease.lease(engine)
    assert held.acquire()
    p = Person("lease-1")
    assert rebuild.apply_records(engine, [p.received(0)], held) == 1
    with engine.begin() as conn:  # it lapsed (a long pause) and another rebuild took it
        conn.execute(text("UPDATE leases SET expires_at = 0 WHERE name = :n"), {"n": lease.NAME})
    assert lease.lease(engine).acquire()
    with pytest.raises(lease.RebuildRefused):
        rebuild.apply_records(engine, [p.accepted(1)], held)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(ProcessedEvent)).one() == 1
