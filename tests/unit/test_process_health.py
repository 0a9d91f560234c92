"""The probes of the processes without an API (relay, worker, consumers): a small HTTP
port answering /livez and /readyz, the relay's readiness saying standby or active, a
consumer that cannot reach its broker not ready, and `linkway status` naming the relay
that holds the publishing lease."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from infra.health import Health, probe, serve
from messaging.consumer import watch
from messaging.lease import Lease
from ops import health as ops_health
from tests.conftest import free_port


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


def test_a_process_is_not_ready_until_it_says_so_and_not_live_once_its_loop_stops(
    port: int,
) -> None:
    health = Health("relay")
    server = serve(health, "127.0.0.1", port)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{port}"
        assert probe(f"{url}/livez") == (200, {"process": "relay", "status": "ok"})
        code, body = probe(f"{url}/readyz")
        assert (code, body["reason"]) == (503, "starting")

        health.ready(True, role="standby", active=False)
        assert probe(f"{url}/readyz") == (
            200,
            {"process": "relay", "status": "ok", "role": "standby", "active": False},
        )
        health.live_within = 0.0  # the loop has not come round since
        assert probe(f"{url}/livez")[0] == 503
        code, body = probe(f"{url}/readyz")
        assert (code, body["reason"]) == (503, "not live")
    finally:
        server.shutdown()
        server.server_close()


def test_no_port_no_server() -> None:
    assert serve(Health("worker"), "127.0.0.1", 0) is None


class Broker:
    def __init__(self, reachable: bool) -> None:
        self.reachable = reachable

    async def ping(self, timeout: float | None) -> bool:
        return self.reachable


@pytest.mark.parametrize("reachable", [True, False])
async def test_a_consumer_is_ready_only_while_its_broker_answers(reachable: bool) -> None:
    health = Health("consume-payments")
    task = asyncio.create_task(watch(Broker(reachable), health, every=0.01))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    ready, body = health.readiness()
    assert ready is reachable
    assert body["broker"] == ("reachable" if reachable else "unreachable")


def test_status_names_the_relay_holding_the_lease_and_fails_when_it_lapsed(
    engine: Engine,
) -> None:
    assert not ops_health.check_relay_lease(engine).ok  # no relay ever ran
    lease = Lease(engine, duration=30, holder="relay-host:42:abc")
    assert lease.acquire()
    held = ops_health.check_relay_lease(engine)
    assert held.ok and "relay-host:42:abc (token 1)" in held.detail
    with engine.begin() as conn:
        conn.execute(text("UPDATE leases SET expires_at = expires_at - 100"))
    lapsed = ops_health.check_relay_lease(engine)
    assert not lapsed.ok and "no relay is active" in lapsed.detail
