"""A worker in a process of its own, so its memory can be read from outside:
``python -m bench.memworker KINDS ADDRESS TASK_QUEUES DATA_DIR CACHE``, where KINDS is
``linkway``, ``floor`` or both (``linkway,floor``, with one task queue each).

It prints ``ready`` once polling and runs until its stdin closes (the parent's way of
stopping it, which also stops it if the parent dies). With ``LINKWAY_BENCH_TRACEMALLOC``
set (a frame count) it traces allocations from the start, and a line ``snapshot PATH``
on its stdin dumps a ``tracemalloc`` snapshot there and answers ``done``
(``bench.memtrace`` diffs two of them)."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tracemalloc
from pathlib import Path

from temporalio.worker import Worker

from activities.transitions import TransitionActivities
from bench.floor import floor_worker, raw_client
from infra import temporal
from infra.db import get_engine
from infra.settings import Settings
from workers.tracing import CommandTraceInterceptor
from workflows.referral import ReferralWorkflow
from workflows.sandbox import RUNNER


async def build(kind: str, settings: Settings, task_queue: str, cache: int) -> Worker:
    engine = get_engine(settings)
    if kind == "linkway":
        # As workers.worker.build_worker builds it, with the cache size made explicit
        # (1000 is the SDK's default, which Linkway's worker runs with).
        return Worker(
            await temporal.connect(settings),
            task_queue=task_queue,
            workflows=[ReferralWorkflow],
            workflow_runner=RUNNER,
            activities=[TransitionActivities(engine, settings.event_source).record_transition],
            interceptors=[CommandTraceInterceptor()],
            max_cached_workflows=cache,
        )
    client = await raw_client(settings.temporal_address)
    return floor_worker(client, engine, task_queue, max_cached_workflows=cache)


async def main(kinds: str, address: str, queues: str, data_dir: str, cache: int) -> None:
    settings = Settings(data_dir=Path(data_dir), temporal_address=address)
    workers = [
        await build(kind, settings, queue, cache)
        for kind, queue in zip(kinds.split(","), queues.split(","), strict=True)
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    print("ready", flush=True)
    # Until the parent closes our stdin; between commands the worker serves as ever.
    while line := await asyncio.to_thread(sys.stdin.readline):
        command, _, path = line.strip().partition(" ")
        if command == "snapshot" and tracemalloc.is_tracing():
            gc.collect()  # what is held, not what waits for the cyclic collector
            tracemalloc.take_snapshot().dump(path)
            print("done", flush=True)
    for w in workers:
        await w.shutdown()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    if frames := os.environ.get("LINKWAY_BENCH_TRACEMALLOC"):
        tracemalloc.start(int(frames))
    kinds, address, queues, data_dir, cache = sys.argv[1:6]
    asyncio.run(main(kinds, address, queues, data_dir, int(cache)))
