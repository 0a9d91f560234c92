"""``linkway reconcile``: the report a contract manager reads (JSON or CSV), a progress
bar on stderr, and an exit code scripts can act on. Runs the command on a SQLite
database the payment engine has written."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from infra.settings import Settings
from ops import cli
from payments.ratebook import RateCardBook
from payments.report import CSV_HEADER
from tests.unit.test_payment_engine import cohort, deliver, payments
from tests.unit.test_payment_rules import card


def run(settings: Settings, fmt: str, output: Path | None = None, quiet: bool = False) -> int:
    args = argparse.Namespace(format=fmt, output=str(output) if output else None, quiet=quiet)
    return cli.reconcile(settings, args)


def test_a_clean_ledger_reconciles_with_exit_0_and_a_json_report(
    settings: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    deliver(payments(engine), *cohort())
    assert run(settings, "json") == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["ok"], report["outcome_events"], report["discrepancies"]) == (True, 7, [])
    assert "events" in err and "clean" in err.splitlines()[-1]  # progress and summary


def test_a_differing_ledger_exits_1_with_a_csv_row_per_difference(
    settings: Settings, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An engine that priced M1 a penny short under the same version name: the packaged
    # rate card the command reads expects £250.00 for each of the three.
    short = RateCardBook([card(**{"metrics.M1.price_pence": 24_999})])
    deliver(payments(engine, short), *cohort())
    report = tmp_path / "reconciliation.csv"
    assert run(settings, "csv", report, quiet=True) == 1
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == CSV_HEADER
    assert {(r["referral_id"], r["metric"], r["problem"]) for r in rows} == {
        ("r-1", "M1", "amount_differs"),
        ("r-2", "M1", "amount_differs"),
        ("r-3", "M1", "amount_differs"),
    }
    assert (rows[0]["expected_gbp"], rows[0]["actual_gbp"]) == ("250.00", "249.99")
    assert "differences" in capsys.readouterr().err
