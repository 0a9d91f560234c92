"""The batch consumer's settling rules, without servers: each ordering key's records in
offset order, different keys at once, and a batch that commits (returns) only when all
of it was handled or dead-lettered; one failure stops its key and nacks the batch; a
batch handler's ``prepare`` sees the batch first and its ``finish`` runs after the lanes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.exceptions import NackMessage

from events.catalogue import EventRejected
from messaging.consumer import Backoff, BatchHandler, BatchRunner, Inbound
from messaging.deadletters import DeadLetters
from workers.providers import referral_of


def record(offset: int, referral: str, n: int, partition: int = 0, key: str = "") -> Any:
    value = json.dumps({"subject": referral, "n": n}).encode()
    return ConsumerRecord(
        "t", partition, offset, 0, 0, (key or referral).encode(), value, None, 0, 0, ()
    )


class Letters(DeadLetters):
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def publish(self, message: Inbound, reason: str) -> None:
        self.sent.append((message.offset, reason))


class Handler:
    """Records what it applied; yields between steps so keys interleave if they can."""

    def __init__(self, fail: set[int] = frozenset(), reject: set[int] = frozenset()) -> None:
        self.applied: list[tuple[str, int]] = []
        self.running = self.peak = 0
        self.fail, self.reject = fail, reject

    async def __call__(self, message: Inbound) -> None:
        body = json.loads(message.value)
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.001)
        self.running -= 1
        if body["n"] in self.fail:
            raise RuntimeError("Temporal is down")
        if body["n"] in self.reject:
            raise EventRejected("bad data: n")
        self.applied.append((body["subject"], body["n"]))


def runner(handler: Handler, letters: Letters, concurrency: int = 4) -> BatchRunner:
    return BatchRunner("t", handler, letters, Backoff(0.0, 0.0), concurrency, referral_of)


def batch(*records: Any) -> Any:
    return SimpleNamespace(raw_message=tuple(records))


async def test_keys_run_at_once_and_each_key_in_offset_order() -> None:
    handler, letters = Handler(), Letters()
    records = [record(i, f"r{i % 3}", i, partition=i % 2) for i in range(12)]
    await runner(handler, letters).settle(batch(*records))
    assert handler.peak > 1
    for key in ("r0", "r1", "r2"):
        assert [n for r, n in handler.applied if r == key] == [
            i for i in range(12) if i % 3 == int(key[1])
        ]


async def test_the_ordering_key_is_the_referral_whatever_kafka_key_was_used() -> None:
    handler, letters = Handler(), Letters()
    records = [record(i, "r1", i, key=f"k{i}") for i in range(6)]
    await runner(handler, letters).settle(batch(*records))
    assert handler.peak == 1
    assert handler.applied == [("r1", i) for i in range(6)]


async def test_concurrency_is_bounded() -> None:
    handler, letters = Handler(), Letters()
    await runner(handler, letters, concurrency=2).settle(
        batch(*(record(i, f"r{i}", i) for i in range(10)))
    )
    assert handler.peak == 2 and len(handler.applied) == 10


async def test_a_rejected_record_is_dead_lettered_and_the_batch_commits() -> None:
    handler, letters = Handler(reject={1}), Letters()
    await runner(handler, letters).settle(batch(*(record(i, "r1", i) for i in range(3))))
    assert letters.sent == [(1, "bad data: n")]
    assert handler.applied == [("r1", 0), ("r1", 2)]


async def test_a_failure_stops_its_key_lets_the_others_finish_and_commits_nothing() -> None:
    handler, letters = Handler(fail={2}), Letters()
    records = [record(i, f"r{i % 2}", i) for i in range(8)]  # r0: 0 2 4 6; r1: 1 3 5 7
    with pytest.raises(NackMessage):
        await runner(handler, letters).settle(batch(*records))
    assert [n for r, n in handler.applied if r == "r0"] == [0], "nothing after the failure"
    assert [n for r, n in handler.applied if r == "r1"] == [1, 3, 5, 7]
    assert letters.sent == []


class BatchAware(Handler):
    """A ``BatchHandler``: sees the batch first, and is told when its lanes are done."""

    def __init__(self, fail: set[int] = frozenset(), finish_fails: bool = False) -> None:
        super().__init__(fail=fail)
        self.prepared: list[int] = []
        self.finished: list[list[tuple[str, int]]] = []
        self.finish_fails = finish_fails

    async def prepare(self, messages: Sequence[Inbound]) -> Any:
        self.prepared = [m.offset for m in messages]
        handler = self

        class Scope:
            async def __call__(self, message: Inbound) -> None:
                await handler(message)

            async def finish(self) -> None:
                handler.finished.append(list(handler.applied))
                if handler.finish_fails:
                    raise RuntimeError("the database is down")

        return Scope()


async def test_a_batch_handler_sees_the_batch_first_and_finishes_after_every_lane() -> None:
    handler, letters = BatchAware(fail={2}), Letters()
    records = [record(i, f"r{i % 2}", i) for i in range(8)]
    assert isinstance(handler, BatchHandler)
    with pytest.raises(NackMessage):
        await runner(handler, letters).settle(batch(*records))
    assert handler.prepared == list(range(8))
    assert handler.finished == [handler.applied], "finished once, after the lanes, failed or not"
    assert sorted(n for _, n in handler.applied) == [0, 1, 3, 5, 7]


async def test_a_batch_whose_finish_fails_is_not_committed() -> None:
    handler, letters = BatchAware(finish_fails=True), Letters()
    with pytest.raises(NackMessage):
        await runner(handler, letters).settle(batch(*(record(i, "r1", i) for i in range(3))))
    assert len(handler.applied) == 3 and len(handler.finished) == 1
