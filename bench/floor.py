"""The floor's activity and worker, and a raw Temporal client: no tracing interceptor,
no pydantic converter, as thin as the SDK allows."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.floor_workflow import FLOOR_WRITE, FloorInput, FloorWorkflow

FLOOR_QUEUE = "bench-floor"
_meta = MetaData()
floor_rows = Table("bench_floor_rows", _meta, Column("key", String(128), primary_key=True))


class FloorActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _meta.create_all(engine)

    @activity.defn(name=FLOOR_WRITE)
    async def write(self, key: str) -> None:
        # Off the event loop, as Linkway's activity does: SQLite blocks.
        await asyncio.to_thread(self._write, key)

    def _write(self, key: str) -> None:
        with self.engine.begin() as conn:
            # A retried activity finds its row: the floor is idempotent too.
            conn.execute(insert(floor_rows).prefix_with("OR IGNORE"), {"key": key})


def floor_worker(
    client: Client, engine: Engine, task_queue: str = FLOOR_QUEUE, **options: object
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow],
        activities=[FloorActivities(engine).write],
        **options,  # type: ignore[arg-type]
    )


async def raw_client(address: str) -> Client:
    return await Client.connect(address)


async def start_floor(client: Client, task_queue: str = FLOOR_QUEUE, sleep: float = 0) -> str:
    """Start one floor workflow; returns its id."""
    wid = f"floor-{uuid.uuid4().hex}"
    extra = {"sleep_seconds": sleep} if sleep else {}
    await client.start_workflow(
        FloorWorkflow.run, FloorInput(key=wid, **extra), id=wid, task_queue=task_queue
    )
    return wid
