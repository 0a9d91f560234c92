"""P4 worker memory and replay: the worker's resident memory per cached open referral,
whether it stays bounded by the cache size once there are more open referrals than the
cache holds, and query latency on a cache miss (a full replay) for a referral with a
1,000-event history against a cache hit.

Each side runs in a worker process of its own (``bench.memworker``) on a task queue of
its own (its activities still commit to Linkway's database), so its RSS
(``/proc/<pid>/status``) is its alone. An open referral is created and accepted (the
workflow then sleeps on one timer, its first-contact deadline); the floor's is started
and takes one update (one timer too). Per referral = the RSS growth from a warm worker
to as many open workflows as the cache holds (``BENCH_CACHE``, on both sides), divided
by their number; past the cache = the growth per workflow from there to twice as many.
A miss is forced by a worker with ``max_cached_workflows=0``, on which every query
replays the current run's whole history. The history is counted over all of the
referral's runs: a referral continues as new at ``HISTORY_BOUND_EVENTS``, so the run a
miss replays holds the latest of its 1,000 events (both counts are in the table). Linkway's
referral keeps growing past 1,000 until its current run is within an update of that
bound: the longest run a miss can replay, the worst case.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client

from bench.core import Deadline, Result, percentile
from bench.drive import accept, concurrently, new_referral
from bench.env import Env
from bench.floor import start_floor
from bench.floor_workflow import FloorWorkflow
from pathway import commands as cmd
from workflows.models import HISTORY_BOUND_EVENTS
from workflows.referral import ReferralWorkflow, command_update

HISTORY_EVENTS = 1_000
SDK_CACHE = 1_000  # the SDK default max_cached_workflows, which Linkway's worker uses
# Both sides cache 200 here, so that twice the cache fits the time budget: at a load
# average of 8.5 a full run with 500 spent 13 minutes in P4 alone.
BENCH_CACHE = 200


class WorkerProcess:
    def __init__(self, env: Env, kind: str, queue: str, cache: int) -> None:
        argv = [sys.executable, "-m", "bench.memworker", kind, env.settings.temporal_address]
        argv += [queue, str(env.settings.data_dir), str(cache)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the child exits if it cannot start
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError(f"the {kind} worker did not start")
        self.kind = kind

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(next(line for line in f if line.startswith("VmRSS")).split()[1])

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


Open = Callable[[], Awaitable[Any]]


def _openers(env: Env, queue: str) -> dict[str, Open]:
    async def linkway() -> Any:
        handle = await new_referral(env.client, queue)
        await accept(handle)
        return handle

    async def floor() -> Any:
        handle = env.raw.get_workflow_handle(await start_floor(env.raw, queue))
        await handle.execute_update(FloorWorkflow.step, 0)
        return handle

    return {"linkway": linkway, "floor": floor}


async def _settled_rss(worker: WorkerProcess) -> int:
    await asyncio.sleep(0.5)  # let the last tasks finish and the allocator settle
    return worker.rss_kib()


async def memory(worker: WorkerProcess, opener: Open, cache: int, past: bool) -> dict[str, float]:
    warm = 10
    await concurrently(warm, 10, opener)
    base = await _settled_rss(worker)
    await concurrently(cache - warm, 20, opener)
    full = await _settled_rss(worker)
    out = {
        "base_kib": base,
        "at_cache_kib": full,
        "per_referral_kib": (full - base) / (cache - warm),
    }
    if past:
        await concurrently(cache, 20, opener)
        beyond = await _settled_rss(worker)
        out |= {"at_twice_kib": beyond, "past_cache_kib": (beyond - full) / cache}
    return out


async def _grow(env: Env, kind: str, queue: str, events: int) -> tuple[Any, int]:
    """One workflow with a history of about ``events`` events (over all its runs), and
    that number."""
    client = env.client if kind == "linkway" else env.raw
    if kind == "linkway":
        handle = await new_referral(env.client, queue)
        await accept(handle)

        async def step(n: int) -> None:
            command = cmd.AssignLinkWorker(
                request_id=uuid.uuid4().hex, actor_id="lw-bench", link_worker_id=f"lw-{n}"
            )
            await handle.execute_update(command_update(cmd.AssignLinkWorker), command)
    else:
        handle = env.raw.get_workflow_handle(await start_floor(env.raw, queue))

        async def step(n: int) -> None:
            await handle.execute_update(FloorWorkflow.step, n)

    runs: dict[str, int] = {}  # run id -> its history length
    grown = False
    for n in range(500):  # bounded: ~10 events per update
        await step(n)
        if grown or n % 10 == 9:
            grown = await _referral_events(client, handle.id, runs) >= events
        # The worst case for a miss: Linkway's current run as long as it gets, an update
        # (about 10 events) short of continuing as new. The floor never continues as new.
        if grown and (kind == "floor" or list(runs.values())[-1] >= HISTORY_BOUND_EVENTS - 15):
            return handle, sum(runs.values())
    raise RuntimeError("the history did not grow")


async def _referral_events(client: Client, workflow_id: str, runs: dict[str, int]) -> int:
    """Events in the whole referral's history, over every run: a referral continues as new
    long before 1,000 events, so the run a miss replays holds only the latest of them."""
    now = await client.get_workflow_handle(workflow_id).describe()
    if now.run_id not in runs:  # the runs seen so far have closed: take their final length
        for run_id in runs:
            closed = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
            runs[run_id] = closed.history_length
    runs[now.run_id] = now.history_length
    return sum(runs.values())


async def _queries(client: Client, handle: Any, kind: str, count: int) -> list[float]:
    query = ReferralWorkflow.get_state if kind == "linkway" else FloorWorkflow.get_count
    handle = client.get_workflow_handle(handle.id)
    await handle.query(query)  # unmeasured: the worker's first task loads the sandbox
    out = []
    deadline = Deadline(300, "replay queries")
    for _ in range(count):
        t0 = time.perf_counter()
        await handle.query(query)
        out.append(time.perf_counter() - t0)
        deadline.check()
    return out


KINDS = ("linkway", "floor")


async def measure(
    env: Env, kind: str, queue: str, cache: int, past: bool, count: int, events: int
) -> tuple[dict[str, float], Any, dict[str, float]]:
    """Memory, then a grown history and cache hits, on one worker of ``kind`` (cache as
    Linkway's): returns the memory figures, the grown workflow and the hit latencies."""
    client = env.client if kind == "linkway" else env.raw
    worker = WorkerProcess(env, kind, queue, BENCH_CACHE)
    try:
        mem = await memory(worker, _openers(env, queue)[kind], cache, past)
        handle, grown = await _grow(env, kind, queue, events)
        replayed = (await client.get_workflow_handle(handle.id).describe()).history_length
        hits = await _queries(client, handle, kind, count)
    finally:
        worker.stop()
    return mem, handle, {"events": grown, "run_events": replayed, **_stats("hit", hits)}


def _stats(what: str, latencies: list[float]) -> dict[str, float]:
    return {
        f"{what}_p50_ms": percentile(latencies, 50) * 1000,
        f"{what}_p99_ms": percentile(latencies, 99) * 1000,
    }


async def run(env: Env) -> list[Result]:
    cache, past, queries, events = (
        (20, False, 5, 60) if env.quick else (BENCH_CACHE, True, 40, HISTORY_EVENTS)
    )
    queues = {kind: f"bench-p4-{kind}-{uuid.uuid4().hex[:6]}" for kind in KINDS}
    mem, handles, rep = {}, {}, {}
    for kind in KINDS:
        mem[kind], handles[kind], rep[kind] = await measure(
            env, kind, queues[kind], cache, past, queries, events
        )
    # Misses: one process caching nothing serves both (its memory is not measured).
    worker = WorkerProcess(env, ",".join(KINDS), ",".join(queues.values()), 0)
    try:
        for kind in KINDS:
            client = env.client if kind == "linkway" else env.raw
            rep[kind] |= _stats("miss", await _queries(client, handles[kind], kind, queries))
    finally:
        worker.stop()
    lw, fl = mem["linkway"]["per_referral_kib"], mem["floor"]["per_referral_kib"]
    results = [
        Result(
            id="P4",
            name="worker RSS per cached open referral",
            unit="KiB",
            linkway=lw,
            floor=fl,
            ratio=lw / fl if fl > 0 else None,
            better="lower",
            goal="<= 1.5x and <= 100 KiB",
            met=(fl > 0 and lw / fl <= 1.5) and lw <= 100,
            scale=f"{cache:,} open workflows (cache {BENCH_CACHE}); scaled down from 100k",
            extra=mem,
        )
    ]
    if past:
        lw_past, fl_past = mem["linkway"]["past_cache_kib"], mem["floor"]["past_cache_kib"]
        results.append(
            Result(
                id="P4",
                name="worker RSS growth per referral past the cache",
                unit="KiB",
                linkway=lw_past,
                floor=fl_past,
                ratio=lw_past / fl_past if fl_past > 0 else None,
                better="lower",
                goal="bounded: << per cached referral",
                met=lw_past <= 0.25 * lw,
                scale=f"{cache:,} -> {2 * cache:,} open workflows",
                extra=mem,
            )
        )
    lwr, flr = rep["linkway"], rep["floor"]
    results += [
        Result(
            id="P4",
            name="replay p99, cache miss vs cache hit (Linkway)",
            unit="ms",
            linkway=lwr["miss_p99_ms"],
            floor=lwr["hit_p99_ms"],
            ratio=lwr["miss_p99_ms"] / lwr["hit_p99_ms"],
            better="lower",
            goal="miss <= 3x hit",
            met=lwr["miss_p99_ms"] <= 3 * lwr["hit_p99_ms"],
            scale=(
                f"{queries} queries each, {lwr['events']:.0f}-event history, "
                f"{lwr['run_events']:.0f} in the run replayed"
            ),
            extra=rep,
        ),
        Result(
            id="P4",
            name="replay p99 on a cache miss vs the trivial workflow",
            unit="ms",
            linkway=lwr["miss_p99_ms"],
            floor=flr["miss_p99_ms"],
            ratio=lwr["miss_p99_ms"] / flr["miss_p99_ms"],
            better="lower",
            goal="(reported)",
            met=None,
            scale=(
                f"{lwr['events']:.0f} vs {flr['events']:.0f} events in all, "
                f"{lwr['run_events']:.0f} vs {flr['run_events']:.0f} in the run replayed"
            ),
            extra=rep,
        ),
    ]
    return results
