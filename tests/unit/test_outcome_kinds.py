"""The open outcome list: completion and distal outcomes (fewer GP appointments, A&E
attendances...) as rate-card metrics, with known answers for the awkward cases. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from events.outcome import CompletionAchieved, DistalChange
from pathway import commands as cmd
from pathway import distal
from payments.errors import RateCardError
from payments.history import History
from payments.ratecard import parse_rate_card
from payments.rules import decide
from tests.unit.pathway_fixtures import only
from tests.unit.test_completion_report import _ended_after_support
from tests.unit.test_payment_engine import deliver, envelope, payments
from tests.unit.test_payment_rules import card, common
from tests.unit.test_ratecard import packaged_data

CLOSED = datetime(2027, 10, 1, tzinfo=UTC)


# --- the windows ---------------------------------------------------------------------------


def test_windows_are_whole_months_either_side_of_the_referral_month() -> None:
    span = distal.windows(date(2027, 3, 10), 6)
    assert span.before == ("2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-02")
    assert span.after == ("2027-04", "2027-05", "2027-06", "2027-07", "2027-08", "2027-09")
    assert span.closes_on == date(2027, 10, 1)


def test_a_december_referral_wraps_the_year() -> None:
    span = distal.windows(date(2026, 12, 31), 1)
    assert (span.before, span.after, span.closes_on) == (
        ("2026-11",),
        ("2027-01",),
        date(2027, 2, 1),
    )


def _months(first: str, counts: list[int]) -> dict[str, int]:
    return {distal.add_months(first, n): c for n, c in enumerate(counts)}


def test_the_change_sums_each_window_and_ignores_the_referral_month() -> None:
    counts = {**_months("2026-09", [2, 1, 0, 3, 1, 2]), "2027-03": 9}
    counts |= _months("2027-04", [1, 0, 0, 1, 0, 1])
    change = distal.change(counts, date(2027, 3, 10), 6, date(2027, 10, 1))
    assert change is not None
    assert (change.before_count, change.after_count, change.reduction) == (9, 3, 6)


def test_nothing_is_stated_before_the_after_window_closes() -> None:
    counts = _months("2026-09", [1] * 13)
    assert distal.change(counts, date(2027, 3, 10), 6, date(2027, 9, 30)) is None


def test_a_month_with_no_data_is_not_zero_and_nothing_is_stated() -> None:
    counts = _months("2026-09", [1] * 13)
    del counts["2027-05"]
    assert distal.change(counts, date(2027, 3, 10), 6, date(2028, 1, 1)) is None
    assert distal.missing_months(counts, date(2027, 3, 10), 6) == ["2027-05"]


# --- distal metrics on the rate card ---------------------------------------------------------


def gp_change(before: int, after: int, months: int = 6, **kw: Any) -> DistalChange:
    span = distal.windows(date(2027, 3, 10), months)
    return DistalChange(
        **common(at=CLOSED, **kw),
        measure="gp_appointments",
        window_months=months,
        before_from=distal.first_day(span.before[0]),
        before_to=distal.last_day(span.before[-1]),
        after_from=distal.first_day(span.after[0]),
        after_to=distal.last_day(span.after[-1]),
        before_count=before,
        after_count=after,
    )


@pytest.mark.parametrize(
    ("before", "after", "status"),
    [(9, 3, "claimed"), (9, 8, "claimed"), (4, 4, "not_eligible"), (2, 5, "not_eligible")],
)
def test_m7_pays_when_gp_appointments_fell(before: int, after: int, status: str) -> None:
    decision = decide("e-1", gp_change(before, after), card(), History())
    assert decision.status == status
    assert decision.key is not None and decision.key.metric == "M7"
    assert decision.claimable_from == (date(2029, 3, 31) if status == "claimed" else None)


def test_nothing_before_means_nothing_can_fall() -> None:
    decision = decide("e-1", gp_change(0, 0), card(), History())
    assert decision.status == "not_eligible" and "fell by 0" in decision.reason


def test_a_percentage_reduction_is_of_the_before_count() -> None:
    strict = card(**{"metrics.M7.min_reduction_percent": 14})  # NHSE's 14% for GP visits
    assert decide("e-1", gp_change(50, 43), strict, History()).status == "claimed"  # 14%
    refused = decide("e-1", gp_change(50, 44), strict, History())
    assert refused.status == "not_eligible" and "less than 14% of 50" in refused.reason


def test_an_outcome_over_other_windows_does_not_meet_the_card() -> None:
    decision = decide("e-1", gp_change(9, 3, months=3), card(), History())
    assert decision.status == "not_eligible"
    assert "compared 3-month windows; the rate card pays on 6" in decision.reason


def test_a_distal_measure_no_metric_names_earns_nothing() -> None:
    ae = gp_change(9, 3).model_copy(update={"measure": "ae_attendances"})
    assert decide("e-1", ae, card(), History()).status == "not_eligible"


def test_one_card_pays_two_measures_with_two_metrics() -> None:
    data = packaged_data()
    data["metrics"]["M8"] = {**data["metrics"]["M7"], "measure": "ae_attendances"}
    data["metrics"]["M8"]["name"] = "Fewer A&E attendances"
    ae = gp_change(3, 1).model_copy(update={"measure": "ae_attendances"})
    decision = decide("e-1", ae, parse_rate_card(data), History())
    assert decision.key is not None and decision.key.metric == "M8"


def test_a_returning_persons_second_episode_is_its_own_claim() -> None:
    again = History(person_counts={"M7": 1}, person_last_earned={"M7": CLOSED})
    second = gp_change(6, 2, episode=2)
    soon = decide("e-2", second, card(**{"metrics.M7.max_per_person": 2}), again)
    assert soon.status == "not_eligible" and soon.reason.startswith("re_entry.exclusion_days")
    later = History(
        person_counts={"M7": 1},
        person_last_earned={"M7": datetime(2027, 1, 1, tzinfo=UTC)},
        episode_started_at=CLOSED,
    )
    allowed = decide("e-2", second, card(**{"metrics.M7.max_per_person": 2}), later)
    assert allowed.status == "claimed" and allowed.key is not None
    assert allowed.key.episode == 2


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("metrics.M7.measure", ..., "metrics.M7.measure: is required for distal metrics"),
        ("metrics.M7.measure", "bed_days", "metrics.M7.measure: must be 'gp_appointments', "),
        ("metrics.M1.measure", "gp_appointments", "metrics.M1.measure: only applies to distal"),
        ("metrics.M7.min_goals_achieved", 1, "metrics.M7.min_goals_achieved: only applies to"),
        ("metrics.M7.min_reduction_percent", 0, "metrics.M7.min_reduction_percent: must be >="),
        ("metrics.M7.window_months", 36, "metrics.M7.window_months: "),
        ("metrics.M5.window_months", 6, "metrics.M5.window_months: only applies to distal"),
    ],
)
def test_a_wrong_outcome_field_is_refused_naming_it(path: str, value: Any, message: str) -> None:
    with pytest.raises(RateCardError) as refused:
        card(**{path: value})
    assert str(refused.value).startswith(message)


def test_two_metrics_for_one_measure_are_refused() -> None:
    data = packaged_data()
    data["metrics"]["M8"] = dict(data["metrics"]["M7"])
    with pytest.raises(RateCardError, match=r"^metrics\.M8\.measure: M7 already pays for it"):
        parse_rate_card(data)


# --- completion ------------------------------------------------------------------------------


def completed(achieved: int = 1, plan: tuple[str, ...] = ("self_managing",)) -> Any:
    return CompletionAchieved(
        **common(),
        report_version=1,
        goal_count=3,
        goals_achieved=achieved,
        goals_partly_achieved=0,
        ongoing_plan=list(plan),
        attended_sessions=4,
    )


def test_m5_pays_a_completion_report_with_a_goal_achieved_and_a_plan() -> None:
    decision = decide("e-1", completed(), card(), History())
    assert decision.status == "claimed" and decision.amount_pence == 15_000


def test_completion_with_no_goal_achieved_or_no_ongoing_plan_earns_nothing() -> None:
    assert decide("e-1", completed(achieved=0), card(), History()).status == "not_eligible"
    no_plan = decide("e-1", completed(plan=()), card(), History())
    assert no_plan.status == "not_eligible" and "needs an ongoing plan" in no_plan.reason
    lenient = card(**{"metrics.M5.ongoing_plan_required": False})
    assert decide("e-1", completed(plan=()), lenient, History()).status == "claimed"


def test_the_pathway_states_completion_with_the_first_report_only() -> None:
    case = _ended_after_support()
    first = case.do(
        cmd.RecordCompletionReport,
        goals=[cmd.GoalOutcome(goal=1, achieved="achieved")],
        ongoing_plan=["self_managing"],
    )
    fact = only(first, CompletionAchieved)
    assert (fact.goals_achieved, fact.goal_count, fact.ongoing_plan) == (1, 2, ["self_managing"])
    report_id = next(eid for eid, data in first.events if data is not fact)
    assert fact.evidence_event_ids == [report_id]
    again = case.do(cmd.RecordCompletionReport, ongoing_plan=["continue_service"])
    assert not [data for _, data in again.events if isinstance(data, CompletionAchieved)]


# --- through the engine and reconciliation ---------------------------------------------------


def test_completion_and_distal_claims_reconcile_from_the_stored_events(engine: Engine) -> None:
    """The engine stores the new outcome kinds as it does the others, and reconciliation
    (one typed parse per stored event) recomputes exactly the ledger's claims."""
    pe = payments(engine)
    fell, rose = gp_change(9, 3, referral="r-7"), gp_change(2, 5, referral="r-8")
    done = completed()
    made = deliver(pe, *[(envelope(o), o) for o in (fell, rose, done)])
    assert [(d.status, d.key.metric if d.key else None) for d in made] == [
        ("claimed", "M7"),
        ("not_eligible", "M7"),
        ("claimed", "M5"),
    ]
    found = pe.reconcile()
    assert (found.ok, found.outcome_events, found.ledger_claims) == (True, 3, 2)
