"""The Well-being Action Fund against a real database, SQLite and PostgreSQL: concurrent
approvals never overspend the budget, the statement reconciles to the penny with the
grants and with the events in the outbox, and every write converges when retried."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from events import topics
from fund.errors import DutyConflict, OverBudget
from fund.service import FundService
from messaging.outbox import OutboxRow

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

LINK_WORKER, APPROVER = "lw-1", "manager-1"


def _fund(service: FundService, budget: int) -> str:
    fund_id = uuid.uuid4().hex
    service.open(fund_id, "demo-county-sp-2026", f"p-{fund_id[:6]}", budget, "cm-1")
    return fund_id


def _request(service: FundService, fund_id: str, amount: int, partner: str = "north") -> str:
    grant_id = uuid.uuid4().hex
    service.request(
        fund_id,
        grant_id,
        referral_id=f"r-{grant_id[:8]}",
        goal_id="goal-1",
        partner_id=partner,
        purpose="travel" if amount % 2 else "equipment",
        supplier="Oswestry Cycles",
        amount_pence=amount,
        actor_id=LINK_WORKER,
    )
    return grant_id


def test_twenty_simultaneous_approvals_against_a_budget_for_seven_approve_exactly_seven(
    engine: Engine,
) -> None:
    service = FundService(engine)
    fund_id = _fund(service, 7 * 4_999 + 4_998)  # seven fit; an eighth is a penny short
    grants = [_request(service, fund_id, 4_999, "north" if i % 2 else "south") for i in range(20)]
    start = threading.Barrier(len(grants))
    outcomes: dict[str, str] = {}

    def approve(grant_id: str) -> None:
        start.wait()
        try:
            service.approve(fund_id, grant_id, APPROVER, None)
            outcomes[grant_id] = "approved"
        except OverBudget:
            outcomes[grant_id] = "over_budget"

    threads = [threading.Thread(target=approve, args=(g,)) for g in grants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()).count("approved") == 7
    assert len(outcomes) == 20
    statement = service.statement(fund_id)
    assert (statement.committed_pence, statement.available_pence) == (7 * 4_999, 4_998)
    assert statement.requested_pence == 13 * 4_999

    # Spend some under the approval: the difference goes back to the budget.
    approved = [g for g, o in outcomes.items() if o == "approved"]
    service.spend(fund_id, approved[0], APPROVER, 4_000, None)
    service.spend(fund_id, approved[1], APPROVER, 4_999, None)
    service.cancel(fund_id, approved[2], APPROVER, "no_longer_needed", None)
    statement = service.statement(fund_id)
    assert statement.spent_pence == 8_999
    assert statement.committed_pence == 4 * 4_999
    _reconciles(engine, service, fund_id)


def _reconciles(engine: Engine, service: FundService, fund_id: str) -> None:
    """The statement adds up, agrees with the grants, and agrees with the events."""
    s = service.statement(fund_id)
    assert s.committed_pence + s.spent_pence + s.available_pence == s.budget_pence
    for lines in (s.by_purpose, s.by_partner):
        assert sum(m.committed_pence for m in lines.values()) == s.committed_pence
        assert sum(m.spent_pence for m in lines.values()) == s.spent_pence
        assert sum(m.requested_pence for m in lines.values()) == s.requested_pence
    grants = service.grants(fund_id)
    assert s.committed_pence == sum(g.amount_pence for g in grants if g.status == "approved")
    assert s.spent_pence == sum(g.spent_pence for g in grants if g.status == "spent")
    # Folding the fund's events (latest status per grant) gives the same money.
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxRow)
            .where(OutboxRow.topic == topics.FUND, OutboxRow.key == fund_id)
            .order_by(col(OutboxRow.seq))
        ).all()
    latest: dict[str, dict] = {}
    for row in rows:
        data = json.loads(row.payload)["data"]
        if "grant_id" in data:
            latest[data["grant_id"]] = data
    assert s.committed_pence == sum(
        d["amount_pence"] for d in latest.values() if d["status"] == "approved"
    )
    assert s.spent_pence == sum(d["spent_pence"] for d in latest.values() if d["status"] == "spent")


def test_the_requester_cannot_approve_and_a_retry_converges(engine: Engine) -> None:
    service = FundService(engine)
    fund_id = _fund(service, 10_000)
    grant_id = _request(service, fund_id, 2_500)
    with pytest.raises(DutyConflict, match="they requested it"):
        service.approve(fund_id, grant_id, LINK_WORKER, None)
    first = service.approve(fund_id, grant_id, APPROVER, None)
    again = service.approve(fund_id, grant_id, APPROVER, None)  # a retry after a lost answer
    assert first == again and again.status == "approved"
    # The request made again with its reserved id finds the grant, and stages no event twice.
    service.request(
        fund_id,
        grant_id,
        referral_id="other",
        goal_id="goal-9",
        partner_id="north",
        purpose="travel",
        supplier="x",
        amount_pence=1,
        actor_id=LINK_WORKER,
    )
    with Session(engine) as session:
        events = session.exec(select(OutboxRow).where(OutboxRow.key == fund_id)).all()
    assert [json.loads(e.payload)["data"].get("status") for e in events] == [
        None,  # opened
        "requested",
        "approved",
    ]
    with pytest.raises(OverBudget, match="below what the fund has committed"):
        service.change_budget(fund_id, 2_000, "cut", "cm-1", "c-1")
    _reconciles(engine, service, fund_id)
