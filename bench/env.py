"""The servers and processes every benchmark runs against, started once per run.

The embedded default's servers: the Temporal dev server, Tansu in memory, Linkway's
SQLite database. The dev server keeps its state in memory unless ``temporal_file`` is
set (``linkway dev`` uses a file): on two cores its SQLite file caps it near 9 updates
with activities per second, below P3's 20 requests/s, so the floor itself would queue
and the ratio would measure the queue; production runs Temporal on PostgreSQL.

In this process: Linkway's worker, the outbox relay (in a thread, at its default poll
interval), the HTTP API, and beside them the floor's worker and its bare HTTP endpoint,
so both sides of every ratio share the same servers, the same interpreter and the same
CPU. Everything listens on 127.0.0.1 and everything stops on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api.app import create_app
from api.auth import demo_tokens
from bench.floor import floor_worker, raw_client
from bench.floor_workflow import FloorWorkflow
from directory import seed_demo
from infra import temporal
from infra.db import get_engine
from infra.settings import Settings
from messaging import provisioning
from messaging.relay import OutboxRelay, make_producer
from ops.devstack import start_broker, start_temporal
from ops.tables import create_tables
from workers.worker import build_worker

HOST = "127.0.0.1"  # benchmark traffic never leaves the machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    run_dir: Path
    settings: Settings
    engine: Engine
    client: Client  # Linkway's: pydantic converter and tracing interceptor
    raw: Client  # the floor's: the SDK's defaults
    relay: OutboxRelay
    api_url: str
    floor_url: str
    tokens: dict[str, str]
    quick: bool


def floor_app(raw: Client) -> FastAPI:
    """The bare endpoint: one raw workflow update per request, nothing else."""
    app = FastAPI()

    @app.post("/floor/{workflow_id}/{n}")
    async def step(workflow_id: str, n: int) -> dict[str, int]:
        handle = raw.get_workflow_handle(workflow_id)
        return {"steps": await handle.execute_update(FloorWorkflow.step, n)}

    return app


def _server(app: Any, port: int) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="error"))


@contextlib.asynccontextmanager
async def running(run_dir: Path, quick: bool, temporal_file: bool = False) -> AsyncIterator[Env]:
    logs = run_dir / "logs"
    temporal_port, broker_port = free_port(), free_port()
    children = [
        start_temporal(
            HOST,
            temporal_port,
            free_port(),
            run_dir / "temporal.db" if temporal_file else None,
            logs,
            headless=True,
        )
    ]
    try:
        children.append(start_broker(HOST, broker_port, logs))
        settings = Settings(
            data_dir=run_dir,
            temporal_address=f"{HOST}:{temporal_port}",
            kafka_bootstrap=f"{HOST}:{broker_port}",
            api_port=free_port(),
            # One bench caller drives more than a person would: the per-caller limit is
            # not what is measured.
            api_rate_per_second=1_000_000.0,
            api_rate_burst=1_000_000,
        )
        provisioning.provision(settings)
        engine = get_engine(settings)
        create_tables(engine)
        seed_demo(engine)
        async with _processes(run_dir, settings, engine, quick) as env:
            yield env
    finally:
        for child in reversed(children):
            child.stop()


@contextlib.asynccontextmanager
async def _processes(
    run_dir: Path, settings: Settings, engine: Engine, quick: bool
) -> AsyncIterator[Env]:
    client = await temporal.connect(settings)
    raw = await raw_client(settings.temporal_address)
    relay = OutboxRelay(engine, make_producer(settings), settings)
    floor_port = free_port()
    api = _server(create_app(settings), settings.api_port)
    bare = _server(floor_app(raw), floor_port)
    workers = [build_worker(client, settings), floor_worker(raw, engine)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    tasks += [asyncio.create_task(api.serve()), asyncio.create_task(bare.serve())]
    tasks.append(asyncio.create_task(asyncio.to_thread(relay.run)))
    try:
        for _ in range(600):  # bounded: 30 s
            if api.started and bare.started:
                break
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError("the API servers did not start")
        yield Env(
            run_dir=run_dir,
            settings=settings,
            engine=engine,
            client=client,
            raw=raw,
            relay=relay,
            api_url=f"http://{HOST}:{settings.api_port}",
            floor_url=f"http://{HOST}:{floor_port}",
            tokens=demo_tokens(settings),
            quick=quick,
        )
    finally:
        api.should_exit = bare.should_exit = True
        relay.stop()
        for w in workers:
            await w.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)
        engine.dispose()
