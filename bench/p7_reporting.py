"""P7 reporting: each KPI answered from the reporting read models (load what it reads,
filter, compute, suppress) against a plain ``SELECT count(*)`` over the same tables, in
the same run on the same database.

The read models are filled by ``reporting.synthetic``: referrals driven through the
pathway's real rules and folded by the reporting consumer's own code (no row is written
by hand). The goal is the issue's: every KPI under 1 s over a year of 100,000 referrals.
Generating that many takes this two-core machine longer than the whole bench budget, so
the full run uses 10,000 and the table says so (``linkway synthetic --referrals 100000``
fills a database to measure the full size by hand; docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlmodel import Session

from bench.core import Result, interleaved, summarise
from bench.env import Env
from infra.db import make_engine
from pathway.config import load
from pathway.measures import default_registry
from payments.ratebook import RateCardBook
from reporting import kpis, synthetic
from reporting.rebuild import apply_records, ensure_tables

FULL_SIZE = 100_000


async def run(env: Env) -> list[Result]:
    rounds, count = (1, 200) if env.quick else (3, 10_000)
    engine = make_engine(f"sqlite:///{env.run_dir / 'reporting.db'}")
    ensure_tables(engine)
    profile = load("default")
    events = await asyncio.to_thread(
        lambda: apply_records(engine, synthetic.year(count, profile, seed=7))
    )
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
                    scale=f"{rounds} rounds x {count:,} referrals, {events:,} events{scaled}",
                    rounds=found,
                )
            )
    finally:
        engine.dispose()
    return results
