"""Linkway as a Tier Two provider meets it, inside a test: the real Temporal dev server and
Tansu broker, the worker, the outbox relay, the inbound provider consumer, and the provider
HTTP API (in process). Providers are unique per test (a pool made up front, since the
tenancy file is read once), each registered in the service directory, whose
``provider_topics`` are provisioned as the relay needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowHandle

from api import directory as directory_api
from api import problems
from api import providers as providers_api
from api.auth import mint_token
from directory import check_prescriptions, hsds, provider_topics
from directory.repository import DirectoryRepository
from events.topics import handoffs_topic
from infra.db import make_engine, transaction
from infra.settings import Settings
from messaging import provisioning
from messaging.outbox import OutboxRow
from messaging.relay import OutboxRelay, make_producer
from ops.tables import create_tables
from pathway import commands as cmd
from pathway.state import CaseState
from providerkit import cli as provider_cli
from tests.workflow.helpers import make_worker, start_referral, to_supported
from workers import providers as inbound
from workflows.referral import ReferralWorkflow

POOL = 16
SERVICE = "sessions"  # every pool provider offers one service, "<provider>-sessions"


def service_of(provider_id: str) -> str:
    return f"{provider_id}-{SERVICE}"


@dataclass
class Harness:
    settings: Settings
    engine: Engine
    client: Client
    task_queue: str
    http: httpx.AsyncClient
    workdir: Path
    pool: list[str]
    _next: int = 0
    handles: list[WorkflowHandle[Any, Any]] = field(default_factory=list)

    def providers(self, n: int) -> list[str]:
        """Fresh provider ids: nobody else in the session has their topics."""
        taken = self.pool[self._next : self._next + n]
        self._next += n
        assert len(taken) == n, "raise POOL"
        return taken

    def token(self, provider_id: str) -> dict[str, str]:
        token = mint_token(self.settings, provider_id, "tier_two", f"admin-of-{provider_id}")
        return {"Authorization": f"Bearer {token}"}

    async def planned(self, *provider_ids: str) -> tuple[WorkflowHandle[Any, Any], dict[str, str]]:
        """A referral with a plan prescribing each provider's service (checked against the
        directory first, as the plan route does); returns each provider's handoff id."""
        prescriptions = [
            cmd.PrescriptionInput(provider_id=p, service_id=service_of(p)) for p in provider_ids
        ]
        with Session(self.engine) as session:
            check_prescriptions(session, prescriptions)
        handle = await start_referral(self.client, self.task_queue)
        self.handles.append(handle)
        await to_supported(handle, prescriptions)
        state = await state_of(handle)
        return handle, {h.provider_id: h.handoff_id for h in state.episode.handoffs.values()}

    async def published(self, provider_id: str, count: int) -> None:
        """Wait until the relay has published ``count`` handoffs to the provider's topic."""

        def done() -> bool:
            with Session(self.engine) as session:
                rows = session.exec(
                    select(OutboxRow.seq)
                    .where(OutboxRow.topic == handoffs_topic(provider_id))
                    .where(col(OutboxRow.published_at).is_not(None))
                ).all()
            return len(rows) >= count

        await eventually(lambda: asyncio.to_thread(done))

    async def tool(self, provider_id: str, *argv: str) -> tuple[int, str]:
        """Run ``linkway-provider`` as the provider's administrator would."""
        out = io.StringIO()
        common = [
            "--bootstrap",
            self.settings.kafka_bootstrap,
            "--provider",
            provider_id,
            "--state",
            str(self.workdir / f"{provider_id}.json"),
        ]
        status = await asyncio.to_thread(provider_cli.main, [*common, *argv], out)
        return status, out.getvalue()


async def state_of(handle: WorkflowHandle[Any, Any]) -> CaseState:
    return await handle.query(ReferralWorkflow.get_state)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.05)


async def until(
    handle: WorkflowHandle[Any, Any], check: Callable[[CaseState], bool], timeout: float = 20
) -> CaseState:
    found: list[CaseState] = []

    async def holds() -> bool:
        found[:] = [await state_of(handle)]
        return check(found[0])

    await eventually(holds, timeout)
    return found[0]


def _tenancy(pool: list[str]) -> str:
    lines = ['commissioner = "test-county"']
    partners = [("north-wellbeing", "tier_one"), ("linkway-admin", "admin")]
    partners += [(p, "tier_two") for p in pool]
    for partner_id, role in partners:
        lines += [
            "[[partners]]",
            f'id = "{partner_id}"',
            f'role = "{role}"',
            f'name = "{partner_id}"',
        ]
        if partner_id == "north-wellbeing":
            lines.append('localities = ["oswestry"]')
    return "\n".join(lines) + "\n"


def _register(engine: Engine, pool: list[str]) -> None:
    with transaction(engine) as session:
        repo = DirectoryRepository(session)
        for provider_id in pool:
            repo.save_organization(
                hsds.Organization(
                    id=provider_id,
                    name=f"Provider {provider_id}",
                    services=[
                        hsds.Service(
                            id=service_of(provider_id),
                            name="Weekly sessions",
                            attributes=[hsds.category("exercise")],
                        )
                    ],
                )
            )


@contextlib.asynccontextmanager
async def running(
    client: Client,
    temporal_address: str,
    bootstrap: str,
    workdir: Path,
    database_url: str | None = None,
) -> AsyncIterator[Harness]:
    prefix = uuid.uuid4().hex[:6]
    pool = [f"p{prefix}-{n}" for n in range(POOL)]
    tenancy = workdir / "tenancy.toml"
    tenancy.write_text(_tenancy(pool))
    settings = Settings(
        data_dir=workdir,
        database_url=database_url or f"sqlite:///{workdir / 'linkway.db'}",
        temporal_address=temporal_address,
        kafka_bootstrap=bootstrap,
        kafka_partitions=3,
        relay_poll_seconds=0.05,
        tenancy_file=str(tenancy),
    )
    engine = make_engine(settings.sqlalchemy_url)
    if database_url is None:
        create_tables(engine)  # a PostgreSQL database comes migrated
    _register(engine, pool)
    with Session(engine) as session:
        provisioning.provision(settings, extra=provider_topics(session))

    task_queue = f"providers-{prefix}"
    producer = make_producer(settings)
    relay = OutboxRelay(engine, producer, settings)
    consumer = inbound.build(settings, client, engine, group_id=f"test-{prefix}.providers")
    app = FastAPI()
    problems.install(app)
    app.include_router(providers_api.router)
    app.include_router(directory_api.router)
    app.state.settings = settings
    app.state.deps = SimpleNamespace(engine=engine, client=client)
    relay_task = asyncio.create_task(asyncio.to_thread(relay.run))
    try:
        async with make_worker(client, engine, task_queue):
            await consumer.start()
            try:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://linkway"
                ) as http:
                    yield Harness(settings, engine, client, task_queue, http, workdir, pool)
            finally:
                await consumer.stop()
    finally:
        relay.stop()
        await relay_task
        producer.close(timeout=5)
        engine.dispose()


def summary(state: CaseState, handoff_id: str) -> dict[str, Any]:
    """What provider facts decide for one handoff, without the ids and times that differ
    between referrals."""
    ep = state.episode
    h = ep.handoffs[handoff_id]

    def kinds(names: list[str]) -> list[str]:  # this handoff's and the referral's own
        return sorted(n.split(":")[0] for n in names if n.partition(":")[2] in ("", handoff_id))

    return {
        "handoff": (h.status, h.reason_code, h.waitlist_band, h.attended),
        "attended": ep.attended_sessions,
        "sessions": [(s.session_date, s.status) for s in ep.recent_sessions],
        "outcomes": ep.outcomes,
        "disengaged": ep.disengaged,
        "overdue": kinds(ep.overdue),
        "deadlines": kinds(list(ep.deadlines)),
    }


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
