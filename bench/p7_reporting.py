"""P7 reporting: each KPI answered from the reporting read models (load what it reads,
filter, compute, suppress) against a plain ``SELECT count(*)`` over the same tables, in
the same run on the same database.

The read models are filled by ``reporting.synthetic``: referrals driven through the
pathway's real rules and folded by the reporting consumer's own code (no row is written
by hand). The goal is the issue's: every KPI under 1 s over a year of 100,000 referrals.
Generating that many takes this two-core machine longer than the whole bench budget, so
the full run uses 10,000 and the table says so.

The database: by default a SQLite file in the run's directory, filled for the run.
``LINKWAY_BENCH_REPORTING_URL`` names another (a PostgreSQL one, or a SQLite file kept
between runs): filled with ``LINKWAY_BENCH_REPORTING_REFERRALS`` referrals if its read
models are empty, measured as it is if not (``linkway synthetic --referrals 100000``
with ``LINKWAY_DATABASE_URL`` set fills one beforehand; docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import os
import time

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.core import Result, interleaved, summarise
from bench.env import Env
from infra.db import make_engine
from pathway.config import load
from pathway.measures import default_registry
from payments.ratebook import RateCardBook
from reporting import kpis, synthetic
from reporting.rebuild import ensure_tables
from reporting.tables import TABLES, ReportEpisode

FULL_SIZE = 100_000


def _filled(engine: Engine) -> tuple[int, int]:
    """(referrals, rows) already in the read models."""
    with engine.connect() as conn:
        referrals = conn.execute(
            select(func.count(func.distinct(ReportEpisode.referral_id)))
        ).scalar_one()
        rows = sum(conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES)
    return int(referrals), int(rows)


async def run(env: Env) -> list[Result]:
    rounds, count = (1, 200) if env.quick else (3, 10_000)
    count = int(os.environ.get("LINKWAY_BENCH_REPORTING_REFERRALS", count))
    url = os.environ.get("LINKWAY_BENCH_REPORTING_URL") or (
        f"sqlite:///{env.run_dir / 'reporting.db'}"
    )
    engine = make_engine(url)
    ensure_tables(engine)
    profile = load("default")
    if _filled(engine)[0] == 0:
        await asyncio.to_thread(lambda: synthetic.fill(engine, count, profile, seed=7))
    count, rows = _filled(engine)
    database = engine.dialect.name
    ctx = kpis.Context(profile, RateCardBook.packaged(), default_registry())
    results: list[Result] = []
    try:
        for name, kpi in kpis.KPIS.items():
            tables = list(kpi.reads)

            def answer(name: str = name) -> float:
                t0 = time.perf_counter()
                with Session(engine) as session:
                    kpis.answer(session, name, kpis.Filters(), ctx).suppressed()
                return time.perf_counter() - t0

            def count_rows(tables: list[sa.Table] = tables) -> float:
                t0 = time.perf_counter()
                with Session(engine) as session:
                    for table in tables:
                        session.execute(select(func.count()).select_from(table)).one()
                return time.perf_counter() - t0

            async def linkway(_: int, answer=answer) -> float:
                return await asyncio.to_thread(answer)

            async def floor(_: int, count_rows=count_rows) -> float:
                return await asyncio.to_thread(count_rows)

            found = await interleaved(rounds, linkway, floor)
            lw, fl, ratio = summarise(found)
            scaled = "" if count >= FULL_SIZE else f" (scaled down from {FULL_SIZE:,})"
            results.append(
                Result(
                    id=f"P7.{name}",
                    name=f"KPI {name}",
                    unit="s",
                    linkway=lw,
                    floor=fl,
                    ratio=ratio,
                    better="lower",
                    goal="< 1 s",
                    met=lw < 1.0,
                    scale=(
                        f"{database}: {rounds} rounds x {count:,} referrals, "
                        f"{rows:,} read-model rows{scaled}"
                    ),
                    rounds=found,
                )
            )
    finally:
        engine.dispose()
    return results
