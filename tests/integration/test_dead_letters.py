"""The consumer contract on the real broker: what cannot be accepted goes to the dead-letter
topic with its reason and original bytes and the consumer moves on; what failed for any
other reason (Temporal down) is neither committed nor dead-lettered, but retried."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date, datetime
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from events import topics
from events.catalogue import MAX_EVENT_BYTES
from messaging.consumer import Backoff
from messaging.deadletters import (
    CONSUMER_HEADER,
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    TIME_HEADER,
    TOPIC_HEADER,
)
from tests.conftest import free_port
from tests.integration import test_provider_inbound
from tests.integration.test_provider_inbound import (
    FRIENDS,
    WALKS,
    Lane,
    Message,
    attendance,
    committed,
    consuming,
    dead_letters,
    ends_of,
    eventually,
    header,
    offsets_reach,
    processed_ids,
    provider_event,
    publish,
    read_all,
    referral_id_of,
    response,
    state_of,
    supported_referral,
)
from tests.workflow.helpers import make_worker

pytestmark = pytest.mark.integration

lane = test_provider_inbound.lane  # the fixture: each test's own topics and consumer group

NHS_NUMBER = "9434765919"


def without(event: Any, field: str) -> bytes:
    body = json.loads(event.to_bytes())
    del body["data"][field]
    return json.dumps(body).encode()


def with_data(event: Any, **extra: Any) -> bytes:
    body = json.loads(event.to_bytes())
    body["data"].update(extra)
    return json.dumps(body).encode()


def malformed(rid: str, handoff_id: str) -> dict[str, bytes]:
    """Each kind of bad message, by a phrase its dead-letter reason must contain."""

    def report(day: int, **data: Any) -> Any:
        return attendance(rid, handoff_id, WALKS, day=day, **data)

    return {
        "not valid JSON": b'{"specversion": "1.0", "id": ',
        "must be a JSON object": b'["linkway.provider.attendance.v1"]',
        "unknown event type": provider_event(
            "linkway.provider.feedback.v1", rid, handoff_id, WALKS
        ).to_bytes(),
        "unsupported version": provider_event(
            "linkway.provider.attendance.v9",
            rid,
            handoff_id,
            WALKS,
            session_date="2026-06-20",
            status="attended",
        ).to_bytes(),
        "session_date: Field required": without(report(21), "session_date"),
        f"the limit is {MAX_EVENT_BYTES}": with_data(report(22), padding="x" * MAX_EVENT_BYTES),
        "'nhs_number' is personal data": with_data(report(23), nhs_number=NHS_NUMBER),
        "not accepted on this topic": response(rid, handoff_id, WALKS).to_bytes(),
        # Valid events, but no session can be held then: refused as the HTTP routes do.
        "implausible date: session_date must not be in the future": report(
            24, session_date=date(9999, 12, 31)
        ).to_bytes(),
        "implausible date: session_date must not be before the handoff": report(
            25, session_date=date(2000, 1, 1)
        ).to_bytes(),
    }


async def test_malformed_messages_are_dead_lettered_and_good_ones_keep_flowing(
    dev_env, engine, task_queue, lane: Lane
):
    async with make_worker(dev_env.client, engine, task_queue):
        handle, handoffs = await supported_referral(dev_env.client, task_queue)
        rid, walks = referral_id_of(handle), handoffs[WALKS]
        bad = malformed(rid, walks)
        good = [attendance(rid, walks, WALKS, day=day) for day in range(1, len(bad) + 2)]
        burst: list[Message] = []
        for event, raw in zip(good, [*bad.values(), None], strict=True):
            burst.append(event)
            if raw is not None:  # bad ones keyed at random: they land on every partition
                burst.append((uuid.uuid4().hex.encode(), raw))
        # A header that is not UTF-8 must not stop a good event (faststream decodes headers).
        late = attendance(rid, walks, WALKS, day=28)
        burst.append((late.key, late.to_bytes(), [("x-partner-trace", b"\xff\xfe")]))
        sent = publish(lane.bootstrap, lane.attendance, burst)

        async with consuming(lane, dev_env.client, engine):
            await offsets_reach(lane, lane.attendance, ends_of(sent))
        state = await state_of(handle)

    where = {_value(m): position for m, position in zip(burst, sent, strict=True)}
    dead = read_all(lane.bootstrap, topics.dead_letter_topic(lane.attendance))
    assert sorted(r.value for r in dead) == sorted(bad.values())
    for record in dead:
        reason = header(record, REASON_HEADER)
        expected = next(phrase for phrase, raw in bad.items() if raw == record.value)
        assert expected in reason, (expected, reason)
        assert NHS_NUMBER not in reason
        assert header(record, TOPIC_HEADER) == lane.attendance
        position = (int(header(record, PARTITION_HEADER)), int(header(record, OFFSET_HEADER)))
        assert position == where[record.value]
        assert header(record, CONSUMER_HEADER) == "providers"
        assert datetime.fromisoformat(header(record, TIME_HEADER)).tzinfo is not None
    # Every good report applied; they fall on three plausible dates (one session each).
    assert state.episode.attended_sessions == len({e.data["session_date"] for e in good}) == 3
    assert state.episode.handoffs[walks].status == "in-progress"
    assert processed_ids(engine) == {e.id for e in [*good, late]}


def _value(message: Message) -> bytes:
    return message[1] if isinstance(message, tuple) else message.to_bytes()


class Outage:
    """A Temporal client that cannot reach its server while ``down`` is set: its calls go
    to a port nothing listens on, so they fail as they would with Temporal down."""

    def __init__(self, client: Client, unreachable: Client) -> None:
        self.client, self.unreachable, self.down = client, unreachable, True

    def get_workflow_handle_for(self, *args: Any, **kwargs: Any) -> Any:
        target = self.unreachable if self.down else self.client
        return target.get_workflow_handle_for(*args, **kwargs)


async def test_failure_that_is_not_a_validation_failure_is_retried_and_not_committed(
    dev_env, engine, task_queue, lane: Lane, caplog: pytest.LogCaptureFixture
):
    unreachable = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    temporal = Outage(dev_env.client, unreachable)
    async with make_worker(dev_env.client, engine, task_queue):
        handle, handoffs = await supported_referral(dev_env.client, task_queue, (FRIENDS,))
        report = attendance(referral_id_of(handle), handoffs[FRIENDS], FRIENDS, day=5)
        ends = ends_of(publish(lane.bootstrap, lane.attendance, [report]))

        async def retried_twice() -> bool:
            return len(_failures(caplog)) >= 3

        with caplog.at_level(logging.WARNING, logger="linkway.consumer"):
            backoff = Backoff(initial=0.1, maximum=0.2)
            async with consuming(lane, temporal, engine, backoff):  # type: ignore[arg-type]
                await eventually(retried_twice, timeout=15)
                assert committed(lane.bootstrap, lane.group_id, lane.attendance) == {}
                assert dead_letters(lane) == []
                assert processed_ids(engine) == set()
                assert (await state_of(handle)).episode.attended_sessions == 0

                temporal.down = False  # Temporal is back: the next retry goes through
                await offsets_reach(lane, lane.attendance, ends)
            attempts = _failures(caplog)
        assert (await state_of(handle)).episode.attended_sessions == 1

    assert len({a.split(" failed")[0] for a in attempts}) == 1, "one record, retried"
    assert all("RuntimeError" in a for a in attempts)
    assert dead_letters(lane) == []
    assert processed_ids(engine) == {report.id}


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if " failed (" in r.getMessage()]
