"""Benchmarks: Linkway against the raw floor of its own stack, as ratios measured in the
same run on the same servers (``make bench``; ``make bench-quick`` to smoke-test).

Each benchmark is ``async (env, context) -> list[Result]``; ``context`` carries what one
benchmark measures for another (P1's publish lags, which P6 reports). The method for
each floor is in its module's docstring and in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.core import Result
    from bench.env import Env

Benchmark = Callable[["Env", dict[str, Any]], Awaitable[list["Result"]]]


async def _p1(env: Env, context: dict[str, Any]) -> list[Result]:
    from bench import p1_pathway

    result, lags = await p1_pathway.run(env)
    context["publish_lags"] = lags
    return [result]


async def _p6(env: Env, context: dict[str, Any]) -> list[Result]:
    from bench import p6_relay

    return await p6_relay.run(env, context.get("publish_lags", []))


async def _p2(env: Env, context: dict[str, Any]) -> list[Result]:
    from bench import p2_ingest

    return await p2_ingest.run(env)


async def _p3(env: Env, context: dict[str, Any]) -> list[Result]:
    from bench import p3_api

    return await p3_api.run(env)


async def _p4(env: Env, context: dict[str, Any]) -> list[Result]:
    from bench import p4_memory

    return await p4_memory.run(env)


async def _p5(env: Env, context: dict[str, Any]) -> list[Result]:
    from bench import p5_reconcile

    return await p5_reconcile.run(env)


async def _p7(env: Env, context: dict[str, Any]) -> list[Result]:
    from bench import p7_reporting

    return await p7_reporting.run(env)


BENCHMARKS: dict[str, Benchmark] = {
    "P1": _p1,
    "P2": _p2,
    "P3": _p3,
    "P4": _p4,
    "P5": _p5,
    "P6": _p6,
    "P7": _p7,
}
