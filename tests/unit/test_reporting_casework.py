"""Link worker activity, caseloads and distal outcomes, each computed from a hand-built
event sequence with a known answer (docs/reporting.md defines them), including a
corrected activity, a deleted one, a deletion read before the activity it deletes, a
declined episode and a distal change stated twice.

The cohort (times are days after Monday 4 May 2026, 09:00 UTC):

- P1 (north, lw-1): one-to-one 60 min direct (day 2); a phone call logged 15 min direct
  on day 3, corrected on day 4 to 25 min indirect; admin 30 min logged day 5, deleted
  day 6. Distal: A&E 4 before, 1 after; out-of-hours 2 and 2; A&E stated again later
  (9 and 9), the first statement counts.
- P2 (north, lw-1): one-to-one 45 min direct (day 3); lw-2 covers a group, 90 min (day 10).
  A&E 2 before, 3 after.
- P3 (north, lw-2): home visit 120 min (day 4); dormant on day 20. A&E 0 and 0.
- P4 (north): declined at triage, never assigned.
- P5 (south, lw-9): an email, 10 min indirect (day 5). A&E 6 before, 2 after.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlmodel import Session

from infra.db import make_engine
from reporting import kpis, stats
from reporting.suppression import SUPPRESSED
from tests.unit.reporting_fixtures import Person, Record
from tests.unit.test_reporting import by, fill, make_context, rows, scratch

pytestmark = pytest.mark.both_databases


def cohort() -> list[Record]:
    p1, p2, p3, p4, p5 = (Person(x) for x in ("cw-1", "cw-2", "cw-3", "cw-4", "cw-5"))
    p5.partner, p5.locality = "south-wellbeing", "ludlow"
    return [
        p1.received(0),
        p1.accepted(0.2),
        p1.assign(0.5, "lw-1"),
        p1.activity(2, "a1", "lw-1", "one_to_one", 60),
        p1.activity(3, "a2", "lw-1", "phone", 15),
        p1.activity(4, "a2", "lw-1", "phone", 25, direct=False, corrected=True, started=3),
        p1.activity(5, "a3", "lw-1", "admin", 30, direct=False),
        p1.delete_activity(6, "a3"),
        p2.received(1),
        p2.assign(1, "lw-1"),
        p2.activity(3, "a4", "lw-1", "one_to_one", 45),
        p2.activity(10, "a5", "lw-2", "group", 90),
        p3.received(2),
        p3.assign(2, "lw-2"),
        p3.activity(4, "a6", "lw-2", "home_visit", 120),
        p3.dormant(20, "unable_to_contact"),
        p4.received(3),
        p4.declined(3.5),
        p5.received(4),
        p5.assign(4, "lw-9"),
        p5.activity(5, "a7", "lw-9", "email", 10, direct=False),
        p1.distal(190, "ae_attendances", 4, 1),
        p1.distal(190, "out_of_hours_contacts", 2, 2),
        p1.distal(200, "ae_attendances", 9, 9),  # stated again: the first counts
        p2.distal(191, "ae_attendances", 2, 3),
        p3.distal(192, "ae_attendances", 0, 0),
        p5.distal(194, "ae_attendances", 6, 2),
    ]


@pytest.fixture(scope="module")
def ctx() -> kpis.Context:
    return make_context()


@pytest.fixture(scope="module")
def data(module_database_url: str | None) -> Iterator[Session]:
    engine = scratch() if module_database_url is None else make_engine(module_database_url)
    session = fill(engine, cohort())
    yield session
    session.close()
    engine.dispose()


def test_link_worker_activity_counts_the_correction_and_not_the_deletion(data, ctx) -> None:
    got = by(rows(data, ctx, "link_worker_activity"), "partner_id", "link_worker_id")
    assert got["north-wellbeing", "lw-1"] == {
        "partner_id": "north-wellbeing",
        "link_worker_id": "lw-1",
        "people": 2,
        "sessions": 3,  # a1, a2 as corrected, a4; a3 deleted
        "minutes": 130,
        "direct_minutes": 105,
        "indirect_minutes": 25,
        "pct_direct": 80.8,
        "minutes_per_person": 65.0,
        "sessions_per_person": 1.5,
    }
    lw2 = got["north-wellbeing", "lw-2"]
    assert (lw2["people"], lw2["sessions"], lw2["minutes"], lw2["pct_direct"]) == (2, 2, 210, 100)
    north = got["north-wellbeing", "all"]  # P2 seen by both counts once
    assert (north["people"], north["sessions"], north["minutes"]) == (3, 5, 340)
    assert (north["direct_minutes"], north["pct_direct"], north["sessions_per_person"]) == (
        315,
        92.6,
        1.7,
    )
    assert got["south-wellbeing", "lw-9"]["indirect_minutes"] == 10
    # filtered: the partner, and the period by when each activity started
    south = rows(data, ctx, "link_worker_activity", partner="south-wellbeing")
    assert {r["link_worker_id"] for r in south} == {"lw-9", "all"}
    early = by(rows(data, ctx, "link_worker_activity", end=date(2026, 5, 6)), "link_worker_id")
    assert (early["lw-1"]["sessions"], early["lw-1"]["minutes"]) == (1, 60)
    # small numbers: fewer than 5 people, so their time is withheld with the count
    shown = kpis.compute("link_worker_activity", data, kpis.Filters(), ctx).suppressed()
    lw1 = by(shown.rows, "partner_id", "link_worker_id")["north-wellbeing", "lw-1"]
    assert (lw1["people"], lw1["sessions"], lw1["minutes"]) == (SUPPRESSED, SUPPRESSED, None)


def test_activity_types_mix(data, ctx) -> None:
    got = by(rows(data, ctx, "activity_types", partner="north-wellbeing"), "activity_type")
    assert set(got) == {"group", "home_visit", "one_to_one", "phone", "all"}  # admin deleted
    assert {k: (r["people"], r["sessions"], r["minutes"]) for k, r in got.items()} == {
        "group": (1, 1, 90),
        "home_visit": (1, 1, 120),
        "one_to_one": (2, 2, 105),
        "phone": (1, 1, 25),
        "all": (3, 5, 340),
    }
    assert (got["phone"]["direct_minutes"], got["phone"]["pct_of_minutes"]) == (0, 7.4)
    assert got["home_visit"]["pct_of_minutes"] == 35.3


def test_a_deletion_read_before_its_activity_still_deletes_it(ctx) -> None:
    p = Person("cw-x")
    logged, deleted = p.activity(2, "ax", "lw-1"), p.delete_activity(3, "ax")
    engine = scratch()
    with fill(engine, [p.received(0), deleted, logged]) as session:
        assert rows(session, ctx, "link_worker_activity") == []
    engine.dispose()


def test_caseload_against_capacity(data, ctx) -> None:
    got = by(rows(data, ctx, "caseload", end=date(2026, 5, 31)), "partner_id", "link_worker_id")
    counts = {k: (r["open_cases"], r["started_last_12_months"]) for k, r in got.items()}
    assert counts == {
        ("north-wellbeing", "lw-1"): (2, 2),
        ("north-wellbeing", "lw-2"): (0, 1),  # P3 went dormant on 24 May
        ("north-wellbeing", "unassigned"): (0, 0),  # P4 declined: not open, not started
        ("north-wellbeing", "all"): (2, 3),
        ("south-wellbeing", "lw-9"): (1, 1),
        ("south-wellbeing", "all"): (1, 1),
    }
    lw1, north = got["north-wellbeing", "lw-1"], got["north-wellbeing", "all"]
    assert (lw1["annual_capacity"], lw1["pct_of_capacity"], lw1["as_of"]) == (
        250,
        0.8,
        "2026-05-31",
    )
    assert (north["annual_capacity"], north["pct_of_capacity"]) == (500, 0.6)
    assert got["north-wellbeing", "unassigned"]["annual_capacity"] is None
    mid = by(rows(data, ctx, "caseload", end=date(2026, 5, 15)), "link_worker_id")
    assert mid["lw-2"]["open_cases"] == 1  # still open then
    later = by(rows(data, ctx, "caseload", end=date(2027, 6, 1)), "link_worker_id")
    assert later["lw-1"]["started_last_12_months"] == 0  # May 2026 is over a year before
    assert later["lw-1"]["open_cases"] == 2


def test_distal_outcomes_per_measure(data, ctx) -> None:
    got = by(rows(data, ctx, "distal_outcomes"), "measure")
    ae = got["ae_attendances"]
    low, high = stats.mean_ci([-3, 1, 0, -4])[1:]
    assert ae == {
        "measure": "ae_attendances",
        "window_months": 6,
        "people": 4,
        "before": 12,
        "after": 6,
        "mean_before": 3.0,
        "mean_after": 1.5,
        "mean_change": -1.5,
        "mean_change_ci_low": stats.r(low, 2),
        "mean_change_ci_high": stats.r(high, 2),
        "pct_change": -50.0,
        "reduced": 2,
        "pct_reduced": 50.0,
        "increased": 1,
    }
    ooh = got["out_of_hours_contacts"]
    assert (ooh["people"], ooh["mean_change"], ooh["mean_change_ci_low"]) == (1, 0.0, None)
    north = by(rows(data, ctx, "distal_outcomes", partner="north-wellbeing"), "measure")
    assert (north["ae_attendances"]["people"], north["ae_attendances"]["before"]) == (3, 6)
    # the period selects episodes by when they were received (P3 on 6 May, P5 on 8 May)
    later = by(rows(data, ctx, "distal_outcomes", start=date(2026, 5, 6)), "measure")
    assert later["ae_attendances"]["people"] == 2
    shown = kpis.compute("distal_outcomes", data, kpis.Filters(), ctx).suppressed()
    first = by(shown.rows, "measure")["ae_attendances"]
    assert (first["people"], first["mean_change"], first["before"]) == (SUPPRESSED, None, None)


def test_a_partner_sees_its_own_link_workers_time_on_an_episode_that_moved(ctx) -> None:
    p = Person("cw-moved")
    before = [p.received(0), p.activity(1, "m1", "lw-1", minutes=40)]
    p.partner, p.locality = "south-wellbeing", "ludlow"  # transferred to south
    records = [*before, p.assign(2, "lw-9"), p.activity(3, "m2", "lw-9", minutes=15)]
    engine = scratch()
    with fill(engine, records) as session:
        south = rows(session, ctx, "link_worker_activity", partner="south-wellbeing")
        north = rows(session, ctx, "link_worker_activity", partner="north-wellbeing")
        everyone = rows(session, ctx, "link_worker_activity")
    engine.dispose()
    assert [(r["link_worker_id"], r["minutes"]) for r in south] == [("lw-9", 15), ("all", 15)]
    assert north == []  # the episode is south's now
    assert {(r["partner_id"], r["link_worker_id"]): r["minutes"] for r in everyone} == {
        ("north-wellbeing", "lw-1"): 40,
        ("north-wellbeing", "all"): 40,
        ("south-wellbeing", "lw-9"): 15,
        ("south-wellbeing", "all"): 15,
    }
