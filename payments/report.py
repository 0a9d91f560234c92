"""A reconciliation report a contract manager can read and finance can load: JSON (the
API's ``Reconciliation``) or CSV, one row per difference, amounts in pence and pounds."""

from __future__ import annotations

import csv
import io

from payments.ratecard import pounds
from payments.views import Reconciliation

CSV_HEADER = (
    "claim_id",
    "contract_id",
    "referral_id",
    "episode",
    "metric",
    "problem",
    "expected_status",
    "actual_status",
    "expected_pence",
    "expected_gbp",
    "actual_pence",
    "actual_gbp",
    "detail",
)


def to_json(report: Reconciliation) -> str:
    return report.model_dump_json(indent=2) + "\n"


def to_csv(report: Reconciliation) -> str:
    """A header row, then one row per difference, sorted by claim; a clean reconciliation
    is the header alone."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for d in report.discrepancies:
        writer.writerow(
            (
                d.claim_id,
                d.contract_id,
                d.referral_id,
                d.episode,
                d.metric,
                d.problem,
                d.expected_status or "",
                d.actual_status or "",
                *_money(d.expected_pence),
                *_money(d.actual_pence),
                d.detail,
            )
        )
    return out.getvalue()


def summary(report: Reconciliation) -> str:
    """One line for the terminal."""
    verdict = "clean" if report.ok else f"{len(report.discrepancies)} differences"
    return (
        f"reconciled {report.outcome_events} outcome events: {report.expected_claims} claims "
        f"expected, {report.ledger_claims} in the ledger; {verdict}"
    )


def _money(pence: int | None) -> tuple[int | str, str]:
    return ("", "") if pence is None else (pence, pounds(pence))
