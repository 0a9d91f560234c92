"""P1 pathway overhead: referrals per second through the whole pathway by the workflow
client, with the real worker and activity (and the relay publishing behind them),
against the floor workflow taking the same starts, updates and signals, each update
committing one row through one activity.

Also returns the commit-to-publish lag of every event the Linkway rounds raised, which
P6 reports (its goal is stated "under P1's load").
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func
from sqlmodel import Session, col, select

from bench.core import Deadline, Result, interleaved, percentile, summarise
from bench.drive import concurrently, floor_pathway, pathway
from bench.env import Env
from messaging.outbox import OutboxRow

CONCURRENCY = 10  # link workers at their desks at once


async def run(env: Env) -> tuple[Result, list[float]]:
    rounds, per_round = (1, 2) if env.quick else (3, 20)
    since = await asyncio.to_thread(_last_seq, env)

    async def linkway(_: int) -> float:
        t0 = time.perf_counter()
        await concurrently(per_round, CONCURRENCY, lambda: pathway(env.client, env.engine))
        return per_round / (time.perf_counter() - t0)

    async def floor(_: int) -> float:
        t0 = time.perf_counter()
        await concurrently(per_round, CONCURRENCY, lambda: floor_pathway(env.raw))
        return per_round / (time.perf_counter() - t0)

    # One unmeasured referral each first: the first workflow task pays for imports and
    # the sandbox's module cache.
    await pathway(env.client, env.engine)
    await floor_pathway(env.raw)
    found = await interleaved(rounds, linkway, floor)
    lags = await asyncio.to_thread(_publish_lags, env, since)
    lw, fl, ratio = summarise(found)
    result = Result(
        id="P1",
        name="pathway overhead",
        unit="referrals/s",
        linkway=lw,
        floor=fl,
        ratio=ratio,
        better="higher",
        goal=">= 0.8x",
        met=ratio >= 0.8,
        scale=f"{rounds} rounds x {per_round} referrals, concurrency {CONCURRENCY}",
        rounds=found,
    )
    return result, lags


def _last_seq(env: Env) -> int:
    with Session(env.engine) as session:
        return int(session.exec(select(func.coalesce(func.max(OutboxRow.seq), 0))).one() or 0)


def _publish_lags(env: Env, since: int) -> list[float]:
    """Seconds from each event's outbox commit to the broker's acknowledgement (when the
    relay marked it), once the relay has caught up."""
    deadline = Deadline(60, "the relay to publish P1's events")
    while True:
        with Session(env.engine) as session:
            left = session.exec(
                select(func.count()).where(col(OutboxRow.published_at).is_(None))
            ).one()
            if not left:
                rows = session.exec(
                    select(OutboxRow.created_at, OutboxRow.published_at).where(
                        col(OutboxRow.seq) > since
                    )
                ).all()
                return [
                    (published - created).total_seconds()
                    for created, published in rows
                    if published is not None
                ]
        deadline.check()
        time.sleep(0.1)


def lag_summary(lags: list[float]) -> dict[str, float]:
    return {
        "events": float(len(lags)),
        "p50_s": percentile(lags, 50),
        "p99_s": percentile(lags, 99),
        "max_s": max(lags, default=float("nan")),
    }
