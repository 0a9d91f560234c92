"""A worker in a process of its own, so its memory can be read from outside:
``python -m bench.memworker KINDS ADDRESS TASK_QUEUES DATA_DIR CACHE``, where KINDS is
``linkway``, ``floor`` or both (``linkway,floor``, with one task queue each).

It prints ``ready`` once polling and runs until its stdin closes (the parent's way of
stopping it, which also stops it if the parent dies)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.worker import Worker

from activities.transitions import TransitionActivities
from bench.floor import floor_worker, raw_client
from infra import temporal
from infra.db import get_engine
from infra.settings import Settings
from workers.tracing import CommandTraceInterceptor
from workflows.referral import ReferralWorkflow


async def build(kind: str, settings: Settings, task_queue: str, cache: int) -> Worker:
    engine = get_engine(settings)
    if kind == "linkway":
        # As workers.worker.build_worker builds it, with the cache size made explicit
        # (1000 is the SDK's default, which Linkway's worker runs with).
        return Worker(
            await temporal.connect(settings),
            task_queue=task_queue,
            workflows=[ReferralWorkflow],
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
    await asyncio.to_thread(sys.stdin.read)  # returns when the parent closes our stdin
    for w in workers:
        await w.shutdown()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    kinds, address, queues, data_dir, cache = sys.argv[1:6]
    asyncio.run(main(kinds, address, queues, data_dir, int(cache)))
