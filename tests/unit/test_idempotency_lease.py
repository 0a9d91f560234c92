"""The Idempotency-Key lease, on a real SQLite database: a running request keeps its key
while it renews; a holder that stops renewing (its process died) loses it within one
lease; a holder that lost its key cannot free or keep the new holder's."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from api import idempotency
from api.idempotency import (
    DONE,
    FAILED,
    PENDING,
    IdempotencyRecord,
    IdempotencyStore,
    fingerprint,
    once,
)
from api.problems import Problem
from infra.db import transaction

SHORT = timedelta(seconds=0.6)


@pytest.fixture(autouse=True)
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency, "LEASE", SHORT)
    monkeypatch.setattr(idempotency, "RENEW_EVERY", SHORT / 3)


def in_progress(store: IdempotencyStore, request_hash: str = "hash") -> bool:
    try:
        store.begin("caller", "k", request_hash, "other-id")
    except Problem as exc:
        assert exc.status == 409
        return True
    return False


def test_a_holder_that_stops_renewing_loses_its_key_within_one_lease(engine: Engine) -> None:
    store = IdempotencyStore(engine)
    first = store.begin("caller", "k", "hash", "reserved")
    assert in_progress(store)
    time.sleep(SHORT.total_seconds() + 0.1)
    # The holder is gone: a retry takes the key over and resumes with the reserved id.
    taken = store.begin("caller", "k", "hash", "other-id")
    assert (taken.state, taken.reserved_id) == (PENDING, "reserved")
    assert taken.body != first.body
    # The old holder, were it only paused, can neither keep nor free the key now.
    assert not store.renew("caller", "k", first.body or "")
    store.fail("caller", "k", first.body or "")
    assert in_progress(store)


def test_a_holder_that_renews_keeps_its_key_past_the_lease(engine: Engine) -> None:
    store = IdempotencyStore(engine)
    held = store.begin("caller", "k", "hash", "reserved")
    for _ in range(4):
        time.sleep(SHORT.total_seconds() / 2)
        assert store.renew("caller", "k", held.body or "")
        assert in_progress(store)


async def test_once_renews_while_the_request_runs_and_frees_the_key_when_it_fails(
    engine: Engine,
) -> None:
    store = IdempotencyStore(engine)

    class Answer(BaseModel):
        ok: bool = True

    async def slow(_: str) -> tuple[int, BaseModel]:
        await asyncio.sleep(SHORT.total_seconds() * 3)
        # Three leases on, the key is still this request's.
        assert await asyncio.to_thread(in_progress, store, fingerprint({"r": 1}))
        raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await once(store, "caller", "k", {"r": 1}, slow)
    with transaction(engine) as session:
        record = session.get(IdempotencyRecord, ("caller", "k"))
        assert record is not None and record.state == FAILED

    async def quick(_: str) -> tuple[int, BaseModel]:
        return 201, Answer()

    answer = await once(store, "caller", "k", {"r": 1}, quick)
    assert answer.status_code == 201
    with transaction(engine) as session:
        record = session.get(IdempotencyRecord, ("caller", "k"))
        assert record is not None and record.state == DONE
