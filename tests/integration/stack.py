"""The whole Linkway stack inside a test: real Temporal dev server, real Tansu broker,
the worker, the outbox relay and the HTTP API served by uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from api.app import create_app
from events.reader import read_all as read_topic  # noqa: F401  (re-exported for tests)
from events.relay import OutboxRelay, make_producer
from infra import kafka
from infra.db import create_tables, get_engine
from infra.settings import Settings
from workers.worker import build_worker


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient
    relay: OutboxRelay


@contextlib.asynccontextmanager
async def running_stack(
    temporal_address: str, bootstrap: str, data_dir: Path, api_port: int
) -> AsyncIterator[Stack]:
    settings = Settings(
        data_dir=data_dir,
        temporal_address=temporal_address,
        kafka_bootstrap=bootstrap,
        kafka_partitions=3,
        api_port=api_port,
        relay_poll_seconds=0.05,
    )
    kafka.provision(settings)
    engine = get_engine(settings)
    create_tables(engine)
    from infra import temporal

    client = await temporal.connect(settings)
    worker = build_worker(client, settings)
    producer = make_producer(settings)
    relay = OutboxRelay(engine, producer, settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=api_port, log_level="error")
    )
    tasks = [
        asyncio.create_task(worker.run()),
        asyncio.create_task(asyncio.to_thread(relay.run)),
        asyncio.create_task(server.serve()),
    ]
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as http:
            yield Stack(settings, http, relay)
    finally:
        server.should_exit = True
        relay.stop()
        await worker.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)
        producer.close(timeout=5)
        engine.dispose()
