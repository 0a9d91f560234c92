"""Outcomes achieved and the payments claimed for them, against the caps."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from payments.ratebook import RateCardBook
from reporting.kpis.view import (
    CLA,
    OUT,
    TITLES,
    Table,
    View,
    count_if,
)

# A claim in these states is money the contract owes or has paid.
PAYABLE = frozenset({"claimed", "validated", "approved", "paid", "disputed"})


def outcomes(v: View) -> Table:
    q = (
        sa.select(OUT.c.month, OUT.c.outcome, sa.func.count())
        .where(*v.dated(OUT, OUT.c.occurred_at))
        .group_by(OUT.c.month, OUT.c.outcome)
    )
    rows = [
        {"month": m, "outcome": o, "episodes": n} for m, o, n in sorted(tuple(r) for r in v.rows(q))
    ]
    return Table(
        "outcomes",
        TITLES["outcomes"],
        ["month", "outcome", "episodes"],
        rows,
        counts=("episodes",),
    )


def payments(v: View) -> Table:
    payable = CLA.c.status.in_(sorted(PAYABLE))
    where = [v.of_episode(CLA, period=False), *v.month_in_period(CLA.c.month)]
    if v.filters.contract is not None:
        where.append(CLA.c.contract_id == v.filters.contract)
    q = (
        sa.select(
            CLA.c.contract_id,
            CLA.c.month,
            CLA.c.metric,
            sa.func.count(),
            count_if(payable),
            count_if(CLA.c.status == "capped"),
            count_if(CLA.c.status == "reversed"),
            sa.func.sum(sa.case((payable, CLA.c.amount_pence), else_=0)),
            sa.func.sum(sa.case((CLA.c.status == "paid", CLA.c.amount_pence), else_=0)),
        )
        .where(*where)
        .group_by(CLA.c.contract_id, CLA.c.month, CLA.c.metric)
    )
    rows = []
    running: Counter[str] = Counter()
    for contract_id, month, metric, claims, n_payable, capped, reversed_, amount, paid in sorted(
        tuple(r) for r in v.rows(q)
    ):
        running[contract_id] += int(amount or 0)
        card = _card(v.ctx.book, contract_id, month)
        metric_cap = card.metrics[metric].max_pence if card and metric in card.metrics else None
        rows.append(
            {
                "contract_id": contract_id,
                "month": month,
                "metric": metric,
                "claims": claims,
                "payable": n_payable,
                "capped": capped,
                "reversed": reversed_,
                "amount_pence": int(amount or 0),
                "paid_pence": int(paid or 0),
                "contract_to_date_pence": running[contract_id],
                "metric_max_pence": metric_cap,
                "partner_month_cap_pence": card.caps.per_partner_per_month_pence if card else None,
                "contract_max_pence": card.caps.total_contract_pence if card else None,
            }
        )
    return Table(
        "payments",
        TITLES["payments"],
        [
            "contract_id",
            "month",
            "metric",
            "claims",
            "payable",
            "capped",
            "reversed",
            "amount_pence",
            "paid_pence",
            "contract_to_date_pence",
            "metric_max_pence",
            "partner_month_cap_pence",
            "contract_max_pence",
        ],
        rows,
        counts=("claims", "payable", "capped", "reversed"),
        group_by=("contract_id", "month"),
    )


def _card(book: RateCardBook, contract_id: str, month: str) -> Any:
    try:
        moment = datetime.fromisoformat(f"{month}-15T12:00:00+00:00")
        return book.in_force(contract_id, moment)
    except (LookupError, ValueError):
        return None
