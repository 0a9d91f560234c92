"""No single point of failure, on PostgreSQL: two of every Linkway process, each a real
``linkway`` command in its own process (2 relays, 2 workers, 2 APIs, 2 members of each
consumer group), while a cohort of referrals is driven through the APIs and the
providers' Kafka door to payment. Meanwhile the active relay is killed (``kill -9``)
again and again, and one worker, one API and one member of each consumer group are
killed too.

Every referral still earns exactly the expected claims (engagement and connection, once
each), every outbox row reaches the broker with each referral's events in commit order,
the ledger verifies, and the relay takeovers are timed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from kafka import KafkaProducer
from sqlmodel import Session, col, func, select
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

from api.auth import demo_tokens
from directory import provider_topics, seed_demo
from infra.db import make_engine
from infra.settings import PaymentSettings, Settings
from messaging import provisioning
from messaging.outbox import OutboxRow
from messaging.reader import read
from messaging.relay import REPLAY_HEADER
from payments.engine import PaymentEngine
from providerkit import contract
from tests.conftest import free_port, temporal_address
from tests.integration.replicas import Replica, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
log = logging.getLogger("test.replicas_failover")

COHORT = 8
STAGGER = 1.5  # seconds between one referral's start and the next
RELAY_KILLS = 3
LEASE, RENEW = 3.0, 0.5
PROVIDER = "walking-group"
GP, LW, WG = "referrer:gp-oswestry", "tier_one:north-wellbeing", f"tier_two:{PROVIDER}"
WEMWBS = {str(i): 2 for i in range(1, 15)}


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of the test's own: the consumer groups read every topic from the start."""
    from ops.devstack import start_broker

    port = free_port()
    child = start_broker("127.0.0.1", port, tmp_path_factory.mktemp("replicas-broker"))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        child.stop()


class Apis:
    """Calls the API replicas as a client behind a load balancer would: a request that
    fails in transport (its replica died) or finds the replica unavailable goes to the
    next one with the same Idempotency-Key; a key still held by a dead replica (409) is
    retried until its lease lapses."""

    def __init__(self, urls: list[str], tokens: dict[str, str]) -> None:
        self.urls, self.tokens, self.turn = urls, tokens, 0
        self.failovers = 0

    async def call(
        self, method: str, path: str, identity: str, body: Any = None, key: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[identity]}"}
        if key:
            headers["Idempotency-Key"] = key
        deadline = time.monotonic() + 60
        while True:
            self.turn += 1
            url = self.urls[self.turn % len(self.urls)]
            try:
                async with httpx.AsyncClient(base_url=url, timeout=20) as http:
                    answer = await http.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                self.failovers += 1
                answer = None
            if answer is not None and answer.status_code not in (409, 502, 503):
                return answer
            if answer is not None and answer.status_code == 409 and not key:
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: no answer from any API replica")
            await asyncio.sleep(0.2)

    async def command(self, referral_id: str, action: str, body: dict[str, Any]) -> None:
        current = await self.call("GET", f"/referrals/{referral_id}", LW)
        assert current.status_code == 200, current.text
        body = {**body, "expected_version": current.json()["version"]}
        answer = await self.call(
            "POST", f"/referrals/{referral_id}/{action}", LW, body, key=uuid.uuid4().hex
        )
        assert answer.status_code == 200, (action, answer.text)


async def drive(apis: Apis, producer: KafkaProducer, n: int) -> str:
    """One referral from a GP's referral to three attended sessions."""
    created = await apis.call(
        "POST",
        "/referrals",
        GP,
        {
            "locality": "oswestry",
            "source": "gp",
            "referrer_org_id": "gp-oswestry-1",
            "reason_codes": ["loneliness"],
            "consent_to_share": True,
            "person": {"given_name": "Replica", "family_name": f"Test{n}"},
        },
        key=uuid.uuid4().hex,
    )
    assert created.status_code == 201, created.text
    rid = created.json()["referral_id"]
    await apis.command(rid, "accept", {"link_worker_id": "lw-1"})
    await apis.command(rid, "contact-attempts", {"outcome": "contacted", "method": "phone"})
    await apis.command(
        rid,
        "assessment",
        {
            "support_level": "2",
            "measures": [{"instrument": "WEMWBS", "consent_ref": "c-1", "answers": WEMWBS}],
        },
    )
    await apis.command(
        rid,
        "plan",
        {"goal_count": 1, "prescriptions": [{"provider_id": PROVIDER, "service_id": "walks"}]},
    )

    async def handoff() -> str | None:
        listed = await apis.call("GET", "/provider/handoffs", WG)
        assert listed.status_code == 200, listed.text
        return next((h["handoff_id"] for h in listed.json() if h["referral_id"] == rid), None)

    deadline = time.monotonic() + 60
    while (handoff_id := await handoff()) is None:
        assert time.monotonic() < deadline, "the handoff never reached the provider"
        await asyncio.sleep(0.3)
    # The provider answers through Kafka (the providers consumer group), as providerkit
    # sends it: accepted, then three sessions attended.
    events = [contract.response(PROVIDER, handoff_id, rid, "accept")]
    # Dates a provider could really report: the day before the handoff to tomorrow (an
    # implausible one is dead-lettered, and would never pay).
    today = datetime.now(UTC).date()
    events += [
        contract.attendance(PROVIDER, handoff_id, rid, today + timedelta(days=d), "attended")
        for d in (-1, 0, 1)
    ]
    for e in events:
        await asyncio.to_thread(
            lambda e=e: producer.send(
                e.topic, key=e.key, value=e.value, headers=[contract.CONTENT_TYPE_HEADER]
            ).get(30)
        )
    return str(rid)


def active_relay(relays: list[Replica]) -> Replica | None:
    return next((r for r in relays if r.child.alive and r.role() == "active"), None)


async def chaos(
    relays: list[Replica], victims: list[list[Replica]], takeovers: list[float]
) -> None:
    """Kill the active relay (and restart it, as a platform would: it comes back as the
    standby) again and again; with each kill, kill the next group of other processes."""
    for round_ in range(RELAY_KILLS):
        await asyncio.sleep(1.0)
        active = await asyncio.to_thread(
            wait_until, lambda: active_relay(relays), 30, "an active relay"
        )
        await asyncio.to_thread(active.kill)
        killed = time.monotonic()
        for victim in victims[round_] if round_ < len(victims) else []:
            await asyncio.to_thread(victim.kill)
            log.info("killed %s", victim.name)
        survivor = next(r for r in relays if r is not active)
        await asyncio.to_thread(
            wait_until,
            lambda survivor=survivor: survivor.role() == "active",
            LEASE + RENEW + 20,
            "the standby relay to take over",
        )
        takeovers.append(time.monotonic() - killed)
        log.info("relay takeover %d: %.2f s", round_ + 1, takeovers[-1])
        if round_ + 1 < RELAY_KILLS:
            await asyncio.to_thread(active.restart)
            assert (await asyncio.to_thread(active.wait_ready))["role"] == "standby"


async def staggered(client: Apis, producer: KafkaProducer, n: int) -> str:
    await asyncio.sleep(n * STAGGER)  # referrals keep arriving while processes die
    return await drive(client, producer, n)


async def test_two_of_everything_survive_kills_and_pay_exactly_once(
    dev_env, own_broker: str, database: str, database_url: str, tmp_path: Path
) -> None:
    if database != "postgresql":
        pytest.skip("the acceptance runs on PostgreSQL: 10 processes writing one SQLite file")
    namespace = f"replicas-{uuid.uuid4().hex[:8]}"
    await dev_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        kafka_bootstrap=own_broker,
        kafka_partitions=4,
        temporal_address=temporal_address(dev_env),
        temporal_namespace=namespace,
    )
    engine = make_engine(database_url)
    seed_demo(engine)
    with Session(engine) as session:
        provisioning.provision(settings, extra=provider_topics(session))
    env = {
        "LINKWAY_DATABASE_URL": database_url,
        "LINKWAY_DATA_DIR": str(tmp_path),
        "LINKWAY_KAFKA_BOOTSTRAP": own_broker,
        "LINKWAY_KAFKA_PARTITIONS": "4",
        "LINKWAY_TEMPORAL_ADDRESS": settings.temporal_address,
        "LINKWAY_TEMPORAL_NAMESPACE": namespace,
        "LINKWAY_RELAY_LEASE_SECONDS": str(LEASE),
        "LINKWAY_RELAY_RENEW_SECONDS": str(RENEW),
        "LINKWAY_RELAY_POLL_SECONDS": "0.05",
        "LINKWAY_SHUTDOWN_GRACE_SECONDS": "2",
        "LINKWAY_API_RATE_PER_SECOND": "1000",
        "LINKWAY_API_RATE_BURST": "1000",
    }
    logs = tmp_path / "logs"
    api_ports = [free_port(), free_port()]
    processes: list[Replica] = []

    def start(name: str, command: list[str], **extra: str) -> Replica:
        replica = Replica(name, command, {**env, **extra}, logs)
        processes.append(replica)
        return replica

    try:
        relays = [start("relay-a", ["relay"])]
        relays[0].wait_ready()  # the first relay takes the lease; the second stands by
        relays.append(start("relay-b", ["relay"]))
        workers = [start(f"worker-{i}", ["worker"]) for i in (1, 2)]
        apis = [
            start(f"api-{i}", ["api"], LINKWAY_API_PORT=str(port))
            for i, port in enumerate(api_ports, 1)
        ]
        providers = [start(f"providers-{i}", ["consume", "providers"]) for i in (1, 2)]
        payers = [start(f"payments-{i}", ["consume", "payments"]) for i in (1, 2)]
        for replica in [relays[1], *workers, *providers, *payers]:
            await asyncio.to_thread(replica.wait_ready)
        urls = [f"http://127.0.0.1:{port}" for port in api_ports]
        for url in urls:
            await asyncio.to_thread(
                wait_until,
                lambda url=url: _ready(f"{url}/readyz"),
                60,
                f"the API at {url} to be ready",
            )
        assert {relays[0].role(), relays[1].role()} == {"active", "standby"}

        client = Apis(urls, demo_tokens(settings))
        producer = KafkaProducer(bootstrap_servers=own_broker, acks="all")
        takeovers: list[float] = []
        started = time.monotonic()
        # Round 1 kills a worker and an API while commands flow; round 2 a member of each
        # consumer group while providers' answers and outcomes flow.
        victims = [[workers[0], apis[0]], [providers[0], payers[0]]]
        chaos_task = asyncio.create_task(chaos(relays, victims, takeovers))
        referrals = await asyncio.gather(*(staggered(client, producer, n) for n in range(COHORT)))
        await chaos_task
        producer.close()

        payments = PaymentEngine.from_settings(engine, PaymentSettings(), tmp_path)
        expected = {(rid, 1, metric) for rid in referrals for metric in ("M1", "M2")}

        def all_paid_and_published() -> bool:
            claims = payments.claims(limit=1000).items
            got = {(c.referral_id, c.episode, c.metric) for c in claims if c.status == "claimed"}
            return got >= expected and _unpublished(engine) == 0

        await asyncio.to_thread(wait_until, all_paid_and_published, 180, "every claim", 0.5)
        log.info(
            "cohort of %d driven to payment in %.1f s; %d API failovers",
            *(COHORT, time.monotonic() - started, client.failovers),
        )
    finally:
        for replica in processes:
            replica.stop()

    claims = [c for c in payments.claims(limit=1000).items if c.referral_id in referrals]
    assert sorted((c.referral_id, c.episode, c.metric) for c in claims) == sorted(expected)
    assert all(c.status == "claimed" for c in claims)
    assert payments.verify().ok

    # Every outbox row reached the broker, each referral's events first in commit order;
    # duplicates are only resends of rows (the at-least-once window, history resent).
    with Session(engine) as session:
        rows = list(session.exec(select(OutboxRow).order_by(col(OutboxRow.seq))))
    seq_of = {row.event_id: row.seq for row in rows}
    duplicates = 0
    for topic in sorted({row.topic for row in rows}):
        seen: set[str] = set()
        firsts: dict[bytes | None, list[int]] = defaultdict(list)
        for key, value, headers in read(own_broker, topic):
            event_id = json.loads(value)["id"]
            if event_id in seen:
                duplicates += headers.get(REPLAY_HEADER[0]) != REPLAY_HEADER[1]
                continue
            seen.add(event_id)
            firsts[key].append(seq_of[event_id])
        assert seen == {row.event_id for row in rows if row.topic == topic}, topic
        for key, seqs in firsts.items():
            assert seqs == sorted(seqs), (topic, key)
    log.info(
        "relay takeovers (s): min %.2f, median %.2f, max %.2f; %d duplicates on the wire",
        *(min(takeovers), statistics.median(takeovers), max(takeovers), duplicates),
    )
    assert len(takeovers) == RELAY_KILLS
    assert client.failovers > 0, "the API was meant to die while requests flowed"
    assert max(takeovers) < LEASE + RENEW + 10
    engine.dispose()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _unpublished(engine: Any) -> int:
    with Session(engine) as session:
        return int(
            session.exec(select(func.count()).where(col(OutboxRow.published_at).is_(None))).one()
        )
