"""Relay replicas on one database, each a real ``linkway relay`` process: the one holding
the lease publishes, a second stays standby and says so, takes over when the first is
paused past its lease, and the paused one, resumed, is fenced: it publishes nothing.
Every event reaches the broker exactly once, each key's events in commit order."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from infra.db import make_engine
from infra.settings import Settings
from messaging import provisioning
from messaging.outbox import OutboxRow
from messaging.reader import read
from messaging.relay import REPLAY_HEADER
from ops import schema
from tests.integration.replicas import Replica, wait_until

# On SQLite only: the lease's statements are held on both databases by
# tests/unit/test_relay_lease.py, and the acceptance (test_replicas_failover) runs relays
# on PostgreSQL.
pytestmark = pytest.mark.integration
log = logging.getLogger("test.relay_failover")

LEASE, RENEW = 3.0, 0.5


def add_rows(engine: Engine, topic: str, keys: list[str], n: int) -> list[str]:
    ids = []
    with Session(engine) as session:
        for i in range(n):
            event_id = uuid.uuid4().hex
            ids.append(event_id)
            payload = json.dumps({"id": event_id, "n": i})
            key = keys[i % len(keys)]
            session.add(
                OutboxRow(event_id=event_id, topic=topic, key=key, type="t", payload=payload)
            )
        session.commit()
    return ids


def published_records(broker: str, topic: str) -> tuple[list[tuple[bytes | None, bytes]], int]:
    """The topic's records as first published, and how many were history sent again
    (marked ``linkway-replay``)."""
    records, replayed = [], 0
    for key, value, headers in read(broker, topic):
        if headers.get(REPLAY_HEADER[0]) == REPLAY_HEADER[1]:
            replayed += 1
        else:
            records.append((key, value))
    return records, replayed


def published(engine: Engine) -> int:
    with Session(engine) as session:
        return int(
            session.exec(select(func.count()).where(col(OutboxRow.published_at).is_not(None))).one()
        )


def total(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(OutboxRow)).one())


def test_a_paused_relay_is_deposed_and_publishes_nothing_after_its_successor_took_over(
    broker: str, database_url: str, tmp_path: Path
) -> None:
    topic = f"test.failover.{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=tmp_path, kafka_bootstrap=broker, database_url=database_url)
    provisioning.provision(settings, extra=[topic])
    engine = make_engine(database_url)
    schema.migrate(engine)
    env = {
        "LINKWAY_DATABASE_URL": database_url,
        "LINKWAY_DATA_DIR": str(tmp_path),
        "LINKWAY_KAFKA_BOOTSTRAP": broker,
        "LINKWAY_RELAY_LEASE_SECONDS": str(LEASE),
        "LINKWAY_RELAY_RENEW_SECONDS": str(RENEW),
        "LINKWAY_RELAY_POLL_SECONDS": "0.05",
    }
    keys = [f"ref-{i}" for i in range(4)]
    a = Replica("relay-a", ["relay"], env, tmp_path / "logs")
    b: Replica | None = None
    try:
        assert a.wait_ready()["role"] == "active"
        # A relay started while another holds the lease stays standby, and says so.
        b = Replica("relay-b", ["relay"], env, tmp_path / "logs")
        body = b.wait_ready()
        assert (body["role"], body["active"]) == ("standby", False)
        assert "relay: standby: another relay holds the publishing lease" in b.log()
        add_rows(engine, topic, keys, 20)
        wait_until(lambda: published(engine) == 20, 30, "the active relay to publish")
        assert b.role() == "standby"

        # The active relay stops (SIGSTOP) past its lease: the standby takes over.
        a.pause()
        paused = time.monotonic()
        wait_until(lambda: b.role() == "active", LEASE + RENEW + 10, "the standby to take over")
        takeover = time.monotonic() - paused
        log.info("takeover after a pause: %.2f s", takeover)
        add_rows(engine, topic, keys, 20)
        wait_until(lambda: published(engine) == 40, 30, "the new active relay to publish")

        # The deposed relay resumes while rows wait and the lease is held: it must send
        # nothing. (The successor is paused a moment so that the rows wait for it.)
        b.pause()
        add_rows(engine, topic, keys, 20)
        a.resume()
        wait_until(lambda: "relay: deposed" in a.log(), LEASE, "the resumed relay to stand down")
        b.resume()
        wait_until(lambda: published(engine) == 60, 30, "the successor to publish")
        assert a.role() == "standby"
    finally:
        a.stop()
        if b is not None:
            b.stop()

    records, replayed = published_records(broker, topic)
    ids = [json.loads(value)["id"] for _, value in records]
    assert len(ids) == len(set(ids)) == total(engine) == 60  # nothing twice: fenced
    # The broker kept its log, so no relay sent the history again on starting or taking
    # over: the embedded broker's log ends (one past its last batch's first offset) are
    # read against the log marks, not against counts (messaging/logmarks.py).
    assert replayed == 0
    with Session(engine) as session:
        order = {row.event_id: row.seq for row in session.exec(select(OutboxRow))}
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for key, value in records:
        by_key[key].append(order[json.loads(value)["id"]])
    assert all(seqs == sorted(seqs) for seqs in by_key.values())
    assert takeover < LEASE + RENEW + 5
    engine.dispose()
