"""The fund's rules, pure: the grant lifecycle, separation of duties and the budget."""

from __future__ import annotations

import pytest

from fund import rules
from fund.errors import DutyConflict, IllegalMove, InvalidGrant, OverBudget


def test_a_grant_is_approved_refused_or_withdrawn_and_only_an_approved_one_is_spent() -> None:
    rules.check_move("requested", "approved")
    rules.check_move("approved", "spent")
    rules.check_move("approved", "cancelled")
    with pytest.raises(IllegalMove, match="a requested grant cannot become spent"):
        rules.check_move("requested", "spent")
    for final in ("refused", "spent", "cancelled"):
        with pytest.raises(IllegalMove, match="it is final"):
            rules.check_move(final, "approved")


def test_the_requester_may_only_withdraw_their_own_grant() -> None:
    for to in ("approved", "refused", "spent"):
        with pytest.raises(DutyConflict, match="they requested it"):
            rules.check_duty("lw-1", "lw-1", to)
        rules.check_duty("lw-1", "lw-2", to)
    rules.check_duty("lw-1", "lw-1", "cancelled")


def test_an_approval_that_would_leave_less_than_nothing_is_refused_to_the_penny() -> None:
    totals = rules.Totals(budget=10_000, committed=6_000, spent=3_000)
    assert totals.available == 1_000
    rules.check_approval(totals, 1_000)
    with pytest.raises(OverBudget, match="1000 of 10000 is left"):
        rules.check_approval(totals, 1_001)


def test_a_request_names_a_purpose_the_fund_funds_within_its_limit() -> None:
    rules.check_request(500, "travel", ("travel",), 500)
    with pytest.raises(InvalidGrant, match="purpose gym"):
        rules.check_request(500, "gym", ("travel",), None)
    with pytest.raises(InvalidGrant, match="over this fund's limit of 500"):
        rules.check_request(501, "travel", ("travel",), 500)


def test_spend_is_at_most_what_was_approved_and_the_budget_never_below_the_money_out() -> None:
    rules.check_spend(1_000, 999)
    with pytest.raises(InvalidGrant):
        rules.check_spend(1_000, 1_001)
    totals = rules.Totals(budget=10_000, committed=6_000, spent=3_000)
    rules.check_budget(totals, 9_000)
    with pytest.raises(OverBudget):
        rules.check_budget(totals, 8_999)


def test_a_grant_names_a_current_goal_of_the_plan_by_its_number() -> None:
    plan: list[dict[str, object]] = [
        {"number": 1, "category": "family_friends", "status": "in_progress"},
        {"number": 2, "category": "health", "status": "dropped"},
    ]
    assert rules.check_goal("1", plan) == "family_friends"  # the grant keeps it
    for goal_id, says in (("goal-1", "current plan: 1, 2"), ("3", "1, 2"), ("2", "dropped")):
        with pytest.raises(InvalidGrant, match=says):
            rules.check_goal(goal_id, plan)
    with pytest.raises(InvalidGrant, match="no plan with goals"):
        rules.check_goal("1", [])
