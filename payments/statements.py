"""Statements for finance: per contract, partner and month, what was claimed, approved,
paid and reversed, per metric and in total, against the partner's monthly cap.

A claim counts in the month of its outcome (the entry's ``period``), the same month the
per-partner cap counts it in, so a later approval, payment or reversal appears against
the month whose outcomes it concerns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from payments.errors import RateCardError
from payments.ledger import EntryBody
from payments.ratebook import RateCardBook
from payments.ratecard import pounds

TOTAL = "ALL"
AMOUNTS = ("claimed", "approved", "paid", "reversed", "net")
HEADER = (
    "contract_id",
    "partner_id",
    "period",
    "metric",
    "claims",
    "capped",
    *(f"{name}_{unit}" for name in AMOUNTS for unit in ("pence", "gbp")),
    "cap_pence",
    "cap_gbp",
    "headroom_pence",
    "headroom_gbp",
)


@dataclass
class Totals:
    claims: int = 0
    capped: int = 0
    claimed_pence: int = 0
    approved_pence: int = 0
    paid_pence: int = 0
    reversed_pence: int = 0  # negative, as the ledger records reversals

    @property
    def net_pence(self) -> int:
        """What stands earned: claimed less reversed."""
        return self.claimed_pence + self.reversed_pence

    def add(self, entry: EntryBody) -> None:
        self.count(entry.kind, entry.amount_pence)

    def count(self, kind: str, amount: int) -> None:
        if kind == "claimed":
            self.claims += 1
            self.claimed_pence += amount
        elif kind == "capped":
            self.capped += 1
        elif kind == "approved":
            self.approved_pence += amount
        elif kind == "paid":
            self.paid_pence += amount
        elif kind == "reversed":
            self.reversed_pence += amount


@dataclass
class Statement:
    contract_id: str
    partner_id: str
    period: str
    cap_pence: int | None = None  # caps.per_partner_per_month_pence of the version in force
    total: Totals = field(default_factory=Totals)
    metrics: dict[str, Totals] = field(default_factory=dict)

    @property
    def headroom_pence(self) -> int | None:
        return None if self.cap_pence is None else self.cap_pence - self.total.net_pence


def statements(entries: Iterable[EntryBody], book: RateCardBook) -> list[Statement]:
    """One statement per (contract, partner, month) with any entries, in that order."""
    found: dict[tuple[str, str, str], Statement] = {}
    versions: dict[tuple[str, str, str], str] = {}
    for entry in entries:
        at = (entry.contract_id, entry.partner_id, entry.period)
        statement = found.setdefault(at, Statement(*at))
        statement.total.add(entry)
        statement.metrics.setdefault(entry.metric, Totals()).add(entry)
        versions[at] = entry.rate_card_version  # the latest version the month was priced with
    for at, statement in found.items():
        try:
            card = book.version(at[0], versions[at])
        except RateCardError:
            continue  # an unknown version: reconciliation reports it; the totals still stand
        statement.cap_pence = card.caps.per_partner_per_month_pence
    return [found[at] for at in sorted(found)]


# The payer of a claim no co-funder shares: a contract that lists no payers.
COMMISSIONER = "commissioner"
PAYER_HEADER = (
    "contract_id",
    "payer_id",
    "period",
    "claims",
    "capped",
    *(f"{name}_{unit}" for name in AMOUNTS for unit in ("pence", "gbp")),
)


@dataclass
class PayerStatement:
    contract_id: str
    payer_id: str
    period: str
    total: Totals = field(default_factory=Totals)


def payer_statements(entries: Iterable[EntryBody]) -> list[PayerStatement]:
    """One statement per (contract, payer, month): each payer's shares of the claims, so
    a co-funded contract's payer statements add up to its partner statements' totals to
    the penny. A claim with no split is the commissioner's whole."""
    found: dict[tuple[str, str, str], PayerStatement] = {}
    for entry in entries:
        shares = entry.shares or ((COMMISSIONER, entry.amount_pence),)
        for payer, pence in shares:
            at = (entry.contract_id, payer, entry.period)
            found.setdefault(at, PayerStatement(*at)).total.count(entry.kind, pence)
    return [found[at] for at in sorted(found)]


def payer_csv(items: Iterable[PayerStatement]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAYER_HEADER)
    for s in items:
        t = s.total
        amounts = (t.claimed_pence, t.approved_pence, t.paid_pence, t.reversed_pence, t.net_pence)
        writer.writerow(
            (
                s.contract_id,
                s.payer_id,
                s.period,
                t.claims,
                t.capped,
                *(v for pence in amounts for v in (pence, pounds(pence))),
            )
        )
    return out.getvalue()


def to_csv(items: Iterable[Statement]) -> str:
    """CSV for finance: a header row, then per statement one row per metric and a
    total row (metric ``ALL``) carrying the cap; amounts in pence and in pounds."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for statement in items:
        rows: list[tuple[str, Totals, int | None, int | None]] = [
            (m, statement.metrics[m], None, None) for m in sorted(statement.metrics)
        ]
        rows.append((TOTAL, statement.total, statement.cap_pence, statement.headroom_pence))
        for metric, totals, cap, headroom in rows:
            amounts = (
                totals.claimed_pence,
                totals.approved_pence,
                totals.paid_pence,
                totals.reversed_pence,
                totals.net_pence,
            )
            writer.writerow(
                (
                    statement.contract_id,
                    statement.partner_id,
                    statement.period,
                    metric,
                    totals.claims,
                    totals.capped,
                    *(v for pence in amounts for v in (pence, pounds(pence))),
                    *_money(cap),
                    *_money(headroom),
                )
            )
    return out.getvalue()


def _money(pence: int | None) -> tuple[int | str, str]:
    return ("", "") if pence is None else (pence, pounds(pence))
