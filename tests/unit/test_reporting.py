"""Each KPI computed from a hand-built event sequence with a known answer (docs/reporting.md
defines them), including the awkward cases: a re-entry, a referral declined and then
re-referred, a referral that joined an episode, a review without measures, an attendance
report corrected, a claim that moved on, a duplicate dead letter.

The cohort (all times are days after Monday 4 May 2026, 09:00 UTC):

- A (north, gp-a, level 2): accepted, contacted day 2, assessed day 5 (WEMWBS 40), plan day
  6 with a walking handoff, accepted, attended 20 May, 27 May reported DNA then corrected
  to attended; reviewed day 96 (WEMWBS 45); engagement outcome; claim approved.
- B (north, self, level 1): contacted day 4, assessed day 10 without a baseline, plan day 11:
  befriending rejects (no capacity), walking waitlists (over 3 months); reviewed day 100
  without measures.
- C (north): gp-b referral declined day 3; re-referred by hospital-1 day 30 (episode 2),
  contacted day 40 (first contact was due day 32: an action fell due), assessed day 45
  (WEMWBS 50), walking handoff never answered (provider response fell due).
- D (north): an unknown source, accepted, nothing more; a second referral joined day 5.
- E (south, ludlow, gp-c, level 3): contacted day 5, assessed day 6 (WEMWBS 30), reviewed
  day 96 (WEMWBS 31), a claim capped.

The KPIs are answered by the database: the module runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from infra.db import make_engine
from pathway.config import load as load_profile
from pathway.measures import default_registry
from payments.ratebook import RateCardBook
from reporting import export, kpis, project, rebuild
from reporting.kpis.choices import choices
from reporting.suppression import SECONDARY, SUPPRESSED, suppress
from reporting.tables import TABLE_NAMES
from tests.unit.reporting_fixtures import Person, Record, dead_letter

pytestmark = pytest.mark.both_databases

WALK, CHAT = ("walking-group", "health-walks"), ("befriending", "chat")


def cohort() -> list[Record]:
    a, b, c, d, e = (Person(x) for x in ("ref-a", "ref-b", "ref-c", "ref-d", "ref-e"))
    e.partner, e.locality = "south-wellbeing", "ludlow"
    return [
        a.received(0, "gp", "gp-a"),
        a.accepted(0.5),
        a.contact(2),
        a.assessed(5, wemwbs=40, level="2"),
        a.plan(6, ("h-a1", *WALK)),
        a.engagement(6),
        a.claim(6, "c-1", "claimed", 25_000),
        a.handoff(7, "h-a1", WALK[0], "accepted"),
        a.claim(10, "c-1", "approved", 25_000),
        a.handoff(16, "h-a1", WALK[0], "in-progress"),
        a.attendance(16, "h-a1", WALK[0], date(2026, 5, 20), "attended"),
        a.attendance(23, "h-a1", WALK[0], date(2026, 5, 27), "did_not_attend"),
        a.attendance(24, "h-a1", WALK[0], date(2026, 5, 27), "attended"),  # the correction
        a.reviewed(96, wemwbs=45),
        b.received(1, "self", "self"),
        b.accepted(1),
        b.contact(3, "no_answer"),
        b.contact(4, "contacted", attempt=2),
        b.assessed(10, wemwbs=None, level="1"),
        b.plan(11, ("h-b1", *CHAT), ("h-b2", *WALK)),
        b.handoff(12, "h-b1", CHAT[0], "rejected", "no_capacity"),
        b.handoff(12, "h-b2", WALK[0], "on-hold", "waitlist_over_3_months"),
        b.reviewed(100, wemwbs=None),
        c.received(2, "gp", "gp-b"),
        c.declined(3, "not_eligible"),
        c.dormant(3, "declined"),
        c.reentered(30, "hospital", "hospital-1"),
        c.accepted(30, due_days=32),
        c.action_due(32, "first_contact"),
        c.contact(40),
        c.assessed(45, wemwbs=50, level="2"),
        c.plan(46, ("h-c1", *WALK)),
        c.action_due(56, "provider_response", "h-c1"),
        d.received(3, "carrier_pigeon", "x-1"),
        d.accepted(3),
        d.joined(5),
        e.received(4, "gp", "gp-c"),
        e.accepted(4),
        e.contact(5),
        e.assessed(6, wemwbs=30, level="3"),
        e.reviewed(96, wemwbs=31),
        e.claim(97, "c-2", "capped", 0, metric="M3"),
        dead_letter("walking-group", "bad data: session_date: invalid date", 11),
        dead_letter("walking-group", "bad data: status: not allowed", 12),
        dead_letter("walking-group", "bad data: status: not allowed", 12),  # the same, twice
        dead_letter("befriending", "unauthorised: handoff h-9 was not made to befriending", 13),
    ]


@pytest.fixture
def db() -> Iterator[Engine]:
    engine = scratch()
    yield engine
    engine.dispose()


def make_context() -> kpis.Context:
    profile = load_profile("default").model_copy(
        update={"referral_trajectory": {"2026-05": 10, "2026-06": 2}}
    )
    return kpis.Context(profile, RateCardBook.packaged(), default_registry())


@pytest.fixture(scope="module")
def ctx() -> kpis.Context:
    return make_context()


def fill(engine: Engine, records: list[Record]) -> Session:
    """The read models folded from the records, and a session to answer KPIs from."""
    rebuild.apply_records(engine, records)
    return Session(engine)


def rows(data: Session, ctx: kpis.Context, name: str, **filters: Any) -> list[dict[str, Any]]:
    return kpis.compute(name, data, kpis.Filters(**filters), ctx).rows


def by(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


@pytest.fixture(scope="module")
def data(module_database_url: str | None) -> Iterator[Session]:
    engine = scratch() if module_database_url is None else make_engine(module_database_url)
    session = fill(engine, cohort())
    yield session
    session.close()
    engine.dispose()


def scratch() -> Engine:
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(
        engine, tables=[SQLModel.metadata.tables[t] for t in (*TABLE_NAMES, "processed_events")]
    )
    return engine


def test_referrals_against_the_trajectory_count_reentries_and_joins(data, ctx) -> None:
    got = by(rows(data, ctx, "referrals_trajectory"), "month")
    # May: A, B, C, D, D joined, E; June: C's re-referral (day 30 is 3 June)
    assert got["2026-05"] == {
        "month": "2026-05",
        "expected": 10,
        "received": 6,
        "difference": -4,
        "pct_of_expected": 60.0,
    }
    assert got["2026-06"]["received"] == 1 and got["2026-06"]["difference"] == -1


def test_referrals_by_source_and_practice(data, ctx) -> None:
    got = by(rows(data, ctx, "referrals_by_source"), "source")
    assert (got["gp"]["new"], got["gp"]["referrals"]) == (3, 3)
    assert (got["self"]["new"], got["self"]["joined"], got["self"]["referrals"]) == (1, 1, 2)
    assert (got["hospital"]["reentered"], got["hospital"]["known_source"]) == (1, True)
    assert got["carrier_pigeon"]["known_source"] is False
    practices = by(rows(data, ctx, "referrals_by_practice"), "referrer_org_id")
    assert {k: v["referrals"] for k, v in practices.items()} == {
        "gp-a": 1,
        "gp-b": 1,
        "gp-c": 1,
        "hospital-1": 1,
        "self": 2,
        "x-1": 1,
    }


def test_triage_counts_the_declined_episode_and_its_re_referral_apart(data, ctx) -> None:
    got = by(rows(data, ctx, "triage"), "decision", "reason")
    assert got["accepted", None]["episodes"] == 5  # A, B, C's second episode, D, E
    assert got["declined", "not_eligible"]["episodes"] == 1
    assert got["all", None]["episodes"] == 6


def test_funnel(data, ctx) -> None:
    got = {r["stage"]: r["episodes"] for r in rows(data, ctx, "funnel")}
    assert got == {
        "received": 6,
        "contacted": 4,
        "assessed": 4,
        "plan_agreed": 3,
        "handoff_accepted": 1,
        "attended": 1,
        "reviewed": 3,
        "followed_up": 0,
    }
    plan = by(rows(data, ctx, "funnel"), "stage")["plan_agreed"]
    assert (plan["pct_of_previous"], plan["pct_of_received"]) == (75.0, 50.0)


def test_time_to_first_contact_and_assessment_against_the_deadline(data, ctx) -> None:
    got = by(rows(data, ctx, "time_to_contact"), "measure")
    # first contact waits 1 (E), 2 (A), 3 (B), 10 (C): nearest-rank median 2, p90 10
    assert got["first_contact"] == {
        "measure": "first_contact",
        "episodes": 4,
        "median_days": 2.0,
        "p90_days": 10.0,
        "deadline": "5 working days",
        "within_deadline": 3,
        "pct_within_deadline": 75.0,
    }
    # assessment waits 2, 5, 9, 15
    assert (got["assessment"]["median_days"], got["assessment"]["p90_days"]) == (5.0, 15.0)
    spread = by(rows(data, ctx, "time_to_contact_distribution"), "measure", "days")
    assert spread["first_contact", "10-14"]["episodes"] == 1
    assert spread["first_contact", "1-2"]["episodes"] == 1
    assert spread["first_contact", "2-3"]["episodes"] == 1
    assert spread["first_contact", "3-5"]["episodes"] == 1


def test_overdue_actions(data, ctx) -> None:
    got = {r["action"]: r["actions_due"] for r in rows(data, ctx, "overdue_actions")}
    assert got == {"first_contact": 1, "provider_response": 1}


def test_handoffs_count_the_corrected_attendance_once(data, ctx) -> None:
    got = by(rows(data, ctx, "handoffs"), "provider_id", "service_id")
    walk = got[WALK]
    assert {
        k: walk[k]
        for k in ("requested", "accepted", "rejected", "waitlisted", "attended", "late_response")
    } == {
        "requested": 3,
        "accepted": 1,
        "rejected": 0,
        "waitlisted": 1,
        "attended": 1,
        "late_response": 1,
    }
    assert (walk["sessions_attended"], walk["sessions_dna"], walk["dna_rate_pct"]) == (2, 0, 0.0)
    assert (got[CHAT]["requested"], got[CHAT]["rejected"]) == (1, 1)
    reasons = by(rows(data, ctx, "handoff_reasons"), "answer", "reason")
    assert reasons["rejected", "no_capacity"]["no_capacity"] is True
    assert reasons["waitlisted", "over_3_months"]["handoffs"] == 1


def test_measures_completeness_change_and_improvement(data, ctx) -> None:
    (wemwbs,) = rows(data, ctx, "measures")
    # baselines A, C, E (B had none); reviews A (+5) and E (+1); B's review had no measures
    assert (wemwbs["baseline"], wemwbs["review"], wemwbs["followup"]) == (3, 2, 0)
    assert (wemwbs["paired"], wemwbs["mean_change"], wemwbs["improved"]) == (2, 3.0, 1)
    # t(1 df) = 12.706, sd 2.828, n 2: 3 +- 25.41
    assert (wemwbs["mean_change_ci_low"], wemwbs["mean_change_ci_high"]) == (-22.41, 28.41)
    # Wilson 95% for 1 of 2: 9.5% to 90.5%
    assert (
        wemwbs["pct_improved"],
        wemwbs["pct_improved_ci_low"],
        wemwbs["pct_improved_ci_high"],
    ) == (50.0, 9.5, 90.5)
    spread = rows(data, ctx, "measure_change_distribution")
    assert [(r["change"], r["episodes"]) for r in spread] == [(1.0, 1), (5.0, 1)]


def test_outcomes_and_payments_against_the_caps(data, ctx) -> None:
    assert rows(data, ctx, "outcomes") == [
        {"month": "2026-05", "outcome": "engagement", "episodes": 1}
    ]
    got = by(rows(data, ctx, "payments"), "month", "metric")
    m1 = got["2026-05", "M1"]  # claimed, then approved: one claim, payable
    assert (m1["claims"], m1["payable"], m1["amount_pence"]) == (1, 1, 25_000)
    assert (m1["contract_max_pence"], m1["partner_month_cap_pence"]) == (846_000_000, 15_000_000)
    m3 = got["2026-08", "M3"]
    assert (m3["claims"], m3["capped"], m3["amount_pence"]) == (1, 1, 0)
    assert m3["metric_max_pence"] == 300_000_000
    assert m3["contract_to_date_pence"] == 25_000


def test_data_quality_and_dead_letters(data, ctx) -> None:
    got = {(r["check"], r["partner_id"]): r["records"] for r in rows(data, ctx, "data_quality")}
    assert got == {
        ("missing_baseline", "north-wellbeing"): 1,
        ("review_without_measures", "north-wellbeing"): 1,
        ("unknown_source", "north-wellbeing"): 1,
        ("provider_response_late", "walking-group"): 1,
        ("provider_response_missing", "walking-group"): 1,
        ("attendance_corrected", "walking-group"): 1,
    }
    letters = {
        (r["partner_id"], r["reason"]): r["messages"] for r in rows(data, ctx, "dead_letters")
    }
    assert letters == {("walking-group", "bad_data"): 2, ("befriending", "unauthorised"): 1}


def test_filters(data, ctx) -> None:
    def received(**filters: Any) -> int:
        return int(rows(data, ctx, "funnel", **filters)[0]["episodes"])

    assert received(partner="south-wellbeing") == 1
    assert received(locality="oswestry") == 5
    assert received(source="gp") == 3  # A, C's first episode, E
    assert received(practice="hospital-1") == 1
    assert received(support_level="2") == 2  # A, C's second episode
    assert received(start=date(2026, 6, 1)) == 1  # C's re-referral
    assert received(end=date(2026, 5, 31)) == 5
    assert received(contract="demo-county-sp-2026") == 6  # it pays north and south
    assert received(contract="no-such-contract") == 0
    assert rows(data, ctx, "payments", partner="south-wellbeing")[0]["metric"] == "M3"


def test_each_event_applies_once_in_any_order(db: Engine, ctx) -> None:
    records = cohort()
    with fill(db, records) as session:
        once = exports(session, ctx)
    other = scratch()
    # Topics are read in any order against each other (each topic's own order is kept),
    # and a redelivery brings records again.
    by_topic: dict[str, list[Record]] = {}
    for r in records:
        by_topic.setdefault(r[0], []).append(r)
    shuffled = [r for topic in reversed(list(by_topic)) for r in by_topic[topic]]
    with fill(other, shuffled + random.Random(7).sample(records, 10)) as session:
        again = exports(session, ctx)
    assert again == once


def exports(data: Session, ctx: kpis.Context) -> dict[str, bytes]:
    out = {}
    filters = kpis.Filters()
    for name in kpis.KPIS:
        table = kpis.compute(name, data, filters, ctx).suppressed()
        out[f"{name}.json"] = export.table_json(table, filters, suppressed=True)
        out[f"{name}.csv"] = export.table_csv(table)
    view = kpis.View(data, filters, ctx)
    out["evaluation.csv"] = export.evaluation_csv(export.evaluation_rows(view, b"key"))
    return out


def test_exports_suppress_small_numbers(data, ctx) -> None:
    table = kpis.compute("funnel", data, kpis.Filters(), ctx).suppressed()
    got = {r["stage"]: (r["episodes"], r["pct_of_received"]) for r in table.rows}
    assert got["received"] == (6, 100.0)
    assert got["contacted"] == (SUPPRESSED, None)
    assert got["followed_up"] == (0, 0.0)
    csv = export.table_csv(table).decode().splitlines()
    assert csv[0] == "order,stage,episodes,pct_of_previous,pct_of_received"
    assert csv[2] == "2,contacted,<5,,"


def test_secondary_suppression_hides_a_second_cell_and_a_lone_total() -> None:
    table = [
        {"source": "gp", "n": 12},
        {"source": "self", "n": 3},
        {"source": "hospital", "n": 9},
        {"source": "all", "n": 24},
    ]
    got = {r["source"]: r["n"] for r in suppress(table, ("n",))}
    # 24 - 12 - 9 would give the 3 back: the next smallest (9) goes too
    assert got == {"gp": 12, "self": SUPPRESSED, "hospital": SECONDARY, "all": 24}
    lone = suppress([{"k": "x", "n": 2}, {"k": "all", "n": 2}], ("n",), group_by=())
    assert [r["n"] for r in lone] == [SUPPRESSED, SUPPRESSED]
    grouped = suppress(
        [{"g": "a", "n": 2}, {"g": "a", "n": 7}, {"g": "b", "n": 20}, {"g": "b", "n": 30}],
        ("n",),
        group_by=("g",),
    )
    assert [r["n"] for r in grouped] == [SUPPRESSED, SECONDARY, 20, 30]


def test_evaluation_dataset_is_pseudonymous_and_matches_its_dictionary(data, ctx) -> None:
    view = kpis.View(data, kpis.Filters(), ctx)
    dataset = export.evaluation_rows(view, b"secret")
    assert len(dataset) == 6
    text = export.evaluation_csv(dataset).decode()
    assert "ref-a" not in text and "ref-" not in text  # no referral id leaves
    header = text.splitlines()[0].split(",")
    assert header == [c.name for c in export.EVALUATION_COLUMNS]
    a = next(r for r in dataset if r["wemwbs_baseline"] == 40.0)
    assert (a["wemwbs_change"], a["instruments_improved"], a["sessions_attended"]) == (
        5.0,
        "WEMWBS",
        2,
    )
    assert a["outcomes"] == "engagement" and a["days_to_first_contact"] == 2.0
    # the key decides the pseudonym: another deployment's key gives other ids
    assert {r["episode_key"] for r in export.evaluation_rows(view, b"other")}.isdisjoint(
        {r["episode_key"] for r in dataset}
    )


def test_evaluation_dataset_as_parquet_reads_back(data, ctx) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import io

    view = kpis.View(data, kpis.Filters(), ctx)
    dataset = export.evaluation_rows(view, b"secret")
    table = pq.read_table(io.BytesIO(export.evaluation_parquet(dataset)))
    assert table.num_rows == 6
    assert table.schema.names == [c.name for c in export.EVALUATION_COLUMNS]
    assert table.to_pylist() == dataset


def test_the_data_dictionary_in_the_docs_lists_every_column() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "reporting.md").read_text()
    for column in export.EVALUATION_COLUMNS:
        assert f"| `{column.name}` |" in doc, column.name
    for name in kpis.KPIS:
        assert f"### {name}" in doc, name


def test_a_record_reporting_cannot_read_is_skipped(db: Engine) -> None:
    with Session(db) as session:
        assert project.apply(session, "linkway.referrals", b"not json", {}) is False
        assert project.apply(session, "linkway.provider.attendance.dlq", b"x", {}) is False


def test_the_evaluation_dataset_respects_consent_to_evaluation(db: Engine, ctx) -> None:
    """Refused: left out; never asked: pathway facts only, measures blank; a refusal on an
    outcome event wins over an assessment's consent, whichever topic is read first."""
    given, refused, unasked, withdrawn = (Person(x) for x in ("r-g", "r-r", "r-u", "r-w"))
    records = [
        *(p.received(0) for p in (given, refused, unasked, withdrawn)),
        given.assessed(2, wemwbs=40),
        given.reviewed(90, wemwbs=45),
        refused.assessed(2, wemwbs=41, consent=["payment_evidence"]),
        unasked.assessed(2, wemwbs=42),
        withdrawn.assessed(2, wemwbs=43),
    ]
    # An assessment recorded before the question was asked carries no purposes.
    topic, value, headers = records[-2]
    raw = json.loads(value)
    raw["data"]["consent_purposes"] = None
    records[-2] = (topic, json.dumps(raw).encode(), headers)
    refusal = withdrawn.engagement(3)
    raw = json.loads(refusal[1])
    raw["data"]["consent_purposes"] = ["provider_sharing", "payment_evidence"]
    records.insert(0, (refusal[0], json.dumps(raw).encode(), refusal[2]))  # read first
    with fill(db, records) as session:
        dataset = export.evaluation_rows(kpis.View(session, kpis.Filters(), ctx), b"k")
        funnel = rows(session, ctx, "funnel")
    by_baseline = {r["support_level"] and r["wemwbs_baseline"]: r for r in dataset}
    assert len(dataset) == 2  # the refusal and the withdrawal are left out
    assert by_baseline[40.0]["evaluation_consent"] is True
    assert by_baseline[40.0]["wemwbs_change"] == 5.0
    (unasked_row,) = [r for r in dataset if r["evaluation_consent"] is None]
    assert (unasked_row["wemwbs_baseline"], unasked_row["instruments_measured"]) == (None, "")
    assert unasked_row["support_level"] == "2"  # its pathway facts stay
    assert funnel[0]["episodes"] == 4  # the KPIs count everyone


def test_the_synthetic_year_folded_in_batches_equals_the_consumers_fold(db: Engine, ctx) -> None:
    """``linkway synthetic`` folds straight through ``project.fold`` with multi-row inserts;
    the consumer's path (records, ``project.apply``) gives the same read models."""
    from reporting import synthetic

    profile = ctx.profile
    rebuild.apply_records(db, synthetic.year(40, profile, seed=3))
    batched = scratch()
    assert synthetic.fill(batched, 40, profile, seed=3, batch_size=100) > 40 * 5
    with Session(db) as one, Session(batched) as other:
        assert exports(other, ctx) == exports(one, ctx)
    batched.dispose()


def test_filter_choices_offer_what_the_reports_hold_and_a_partner_only_its_own(data, ctx) -> None:
    everyone = choices(data, ctx.book, None)
    assert everyone["partner"] == ["north-wellbeing", "south-wellbeing"]
    assert everyone["locality"] == ["ludlow", "oswestry"]
    assert everyone["source"] == ["carrier_pigeon", "gp", "hospital", "self"]
    assert everyone["practice"] == ["gp-a", "gp-b", "gp-c", "hospital-1", "self", "x-1"]
    assert everyone["support_level"] == ["1", "2", "3"]
    assert everyone["contract"] == ctx.book.contracts()
    south = choices(data, ctx.book, "south-wellbeing")
    assert south == {
        "contract": ctx.book.contracts_for("south-wellbeing"),
        "partner": ["south-wellbeing"],
        "locality": ["ludlow"],
        "source": ["gp"],
        "practice": ["gp-c"],
        "support_level": ["3"],
    }
    assert choices(data, ctx.book, "nobody")["partner"] == []
