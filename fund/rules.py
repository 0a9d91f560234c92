"""The fund's rules as pure functions: the grant lifecycle, who may move a grant, and
what the budget allows. ``fund.service`` calls them holding the fund's lock, so what
they are given is what every other writer sees.

Lifecycle::

    requested ──► approved ──► spent
        │  │          │
        │  └► refused └──► cancelled
        └────► cancelled

Money: a grant commits its amount when it is approved; recording the spend replaces the
commitment with what was spent (at most the approved amount: an underspend goes back to
the budget); cancelling an approved grant releases its commitment. At every moment
``committed + spent <= budget``.

Separation of duties (as the payment engine's ``payments.duties``): whoever requested a
grant may not approve, refuse or record the spend of it; they may only withdraw (cancel)
it while it is still a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from fund.errors import DutyConflict, IllegalMove, InvalidGrant, OverBudget

MOVES: dict[str, frozenset[str]] = {
    "requested": frozenset({"approved", "refused", "cancelled"}),
    "approved": frozenset({"spent", "cancelled"}),
    "refused": frozenset(),
    "spent": frozenset(),
    "cancelled": frozenset(),
}
FINAL = frozenset(s for s, onward in MOVES.items() if not onward)


@dataclass(frozen=True)
class Totals:
    """A fund's money at one moment, in pence."""

    budget: int
    committed: int  # approved, not yet spent or cancelled
    spent: int

    @property
    def available(self) -> int:
        return self.budget - self.committed - self.spent


def check_move(status: str, to: str) -> None:
    if to not in MOVES[status]:
        onward = ", ".join(sorted(MOVES[status])) or "nothing (it is final)"
        raise IllegalMove(f"a {status} grant cannot become {to}; it can become {onward}")


def check_duty(requester_id: str, actor_id: str, to: str) -> None:
    """The requester may only withdraw their own request; everyone else may not be them."""
    if actor_id == requester_id and to != "cancelled":
        verb = {"approved": "approve", "refused": "refuse", "spent": "record the spend of"}[to]
        raise DutyConflict(f"{actor_id} cannot {verb} this grant: they requested it")


def check_request(
    amount_pence: int, purpose: str, purposes: tuple[str, ...], max_grant_pence: int | None
) -> None:
    if purpose not in purposes:
        raise InvalidGrant(f"purpose {purpose} is not one this fund funds: {', '.join(purposes)}")
    if amount_pence < 1:
        raise InvalidGrant("amount_pence must be at least 1")
    if max_grant_pence is not None and amount_pence > max_grant_pence:
        raise InvalidGrant(
            f"amount_pence {amount_pence} is over this fund's limit of {max_grant_pence}"
        )


def check_goal(goal_id: str, goals: list[dict[str, object]]) -> str | None:
    """A grant serves one of the person's current goals: ``goal_id`` is the goal's number
    in the current plan (the referral's ``goals[].number``, as check-ins name it), and the
    goal must not have been dropped. ``goals`` is the read model's record of the plan.
    Returns the goal's category, which the grant keeps."""
    numbers = [str(g.get("number")) for g in goals]
    current = [str(g.get("number")) for g in goals if g.get("status") != "dropped"]
    if not goals:
        raise InvalidGrant("goal_id: the person has no plan with goals yet; agree a plan first")
    if goal_id not in numbers:
        raise InvalidGrant(
            f"goal_id must be the number of a goal in the person's current plan: "
            f"{', '.join(numbers)}"
        )
    if goal_id not in current:
        raise InvalidGrant(
            f"goal {goal_id} was dropped from the plan; a grant needs a current goal"
        )
    (goal,) = [g for g in goals if str(g.get("number")) == goal_id]
    category = goal.get("category")
    return str(category) if category else None


def check_approval(totals: Totals, amount_pence: int) -> None:
    if amount_pence > totals.available:
        raise OverBudget(
            f"approving {amount_pence} would overspend the fund: {totals.available} of "
            f"{totals.budget} is left ({totals.committed} committed, {totals.spent} spent)"
        )


def check_spend(approved_pence: int, spent_pence: int) -> None:
    if not 0 <= spent_pence <= approved_pence:
        raise InvalidGrant(f"spent_pence must be between 0 and the approved {approved_pence}")


def check_budget(totals: Totals, new_budget: int) -> None:
    floor = totals.committed + totals.spent
    if new_budget < floor:
        raise OverBudget(
            f"a budget of {new_budget} is below what the fund has committed and spent ({floor})"
        )
