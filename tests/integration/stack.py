"""The whole Linkway stack inside a test: real Temporal dev server, real Tansu broker,
the worker, the outbox relay and the HTTP API served by uvicorn on a free port.

``stack.auth("referrer:gp-oswestry")`` gives the headers of a demo identity (one per
partner in the demo tenancy, keyed "<role>:<partner id>"), optionally with an
Idempotency-Key."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from api.auth import demo_tokens
from directory import seed_demo
from infra.db import get_engine
from infra.settings import Settings
from messaging import provisioning
from messaging.relay import OutboxRelay, make_producer
from ops import schema
from workers.worker import build_worker


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient
    relay: OutboxRelay
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, identity: str, key: str | bool = False) -> dict[str, str]:
        """Headers for a demo identity; ``key=True`` adds a fresh Idempotency-Key."""
        headers = {"Authorization": f"Bearer {self.tokens[identity]}"}
        if key:
            headers["Idempotency-Key"] = uuid.uuid4().hex if key is True else str(key)
        return headers


@contextlib.asynccontextmanager
async def running_stack(
    temporal_address: str, bootstrap: str, data_dir: Path, api_port: int, **overrides: Any
) -> AsyncIterator[Stack]:
    settings = Settings(
        data_dir=data_dir,
        temporal_address=temporal_address,
        kafka_bootstrap=bootstrap,
        kafka_partitions=3,
        api_port=api_port,
        relay_poll_seconds=0.05,
        **overrides,
    )
    provisioning.provision(settings)
    engine = get_engine(settings)
    # Through the migrations, not create_tables: the whole stack runs on the schema
    # production gets.
    schema.migrate(engine)
    seed_demo(engine)  # the demo service directory, as `linkway dev` seeds it
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
            yield Stack(settings, http, relay, demo_tokens(settings))
    finally:
        server.should_exit = True
        relay.stop()
        await worker.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)
        producer.close(timeout=5)
        engine.dispose()


class ThreadedApi:
    """The worker and the HTTP API on their own event loop in a background thread, for
    synchronous tests (schemathesis) that block the test's own loop. No Kafka: events
    stay in the outbox."""

    def __init__(self, temporal_address: str, data_dir: Path, api_port: int, **overrides: Any):
        self.settings = Settings(
            data_dir=data_dir, temporal_address=temporal_address, api_port=api_port, **overrides
        )
        self.base_url = f"http://127.0.0.1:{api_port}"
        self.tokens = demo_tokens(self.settings)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        from infra import temporal

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        schema.migrate(get_engine(self.settings))
        seed_demo(get_engine(self.settings))
        worker = build_worker(await temporal.connect(self.settings), self.settings)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.settings),
                host="127.0.0.1",
                port=self.settings.api_port,
                log_level="error",
            )
        )
        tasks = [asyncio.create_task(worker.run()), asyncio.create_task(server.serve())]
        while not server.started:
            await asyncio.sleep(0.05)
        self._ready.set()
        await self._stop.wait()
        server.should_exit = True
        await worker.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> ThreadedApi:
        self._thread.start()
        if not self._ready.wait(timeout=60):
            raise RuntimeError("the API did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def auth(self, identity: str, key: str | bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[identity]}"}
        if key:
            headers["Idempotency-Key"] = uuid.uuid4().hex if key is True else str(key)
        return headers


async def refer(
    http: httpx.AsyncClient, api: ThreadedApi, identity: str, person: dict[str, Any], **body: Any
) -> str:
    """A new referral of ``person`` (a GP referral in Oswestry with consent to share,
    unless ``body`` says otherwise) by ``identity``; its id."""
    made = await http.post(
        "/referrals",
        json={
            "locality": "oswestry",
            "source": "gp",
            "referrer_org_id": "gp-1",
            "consent_to_share": True,
            **body,
            "person": person,
        },
        headers=api.auth(identity, True),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["referral_id"])


async def walk(
    http: httpx.AsyncClient,
    api: ThreadedApi,
    identity: str,
    referral_id: str,
    steps: list[tuple[str, dict[str, Any]]],
    first_version: int = 1,
) -> int:
    """Posts each (command path, body) to the referral in turn, each expecting the
    version the one before left; the version after the last."""
    version = first_version
    for path, step in steps:
        done = await http.post(
            f"/referrals/{referral_id}/{path}",
            json={**step, "expected_version": version},
            headers=api.auth(identity, True),
        )
        assert done.status_code == 200, done.text
        version += 1
    return version
