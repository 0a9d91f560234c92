"""Escalations to the link worker, with the DEFAULT durations on the time-skipping server:
no provider response in 10 days, a waitlist longer than the plan allows, three
did-not-attends in a row, and no attendance for 28 days. Each raises an ``action_due``
event and shows on the caseload (the read model's actions due) until it is resolved.

Every check reads the read model, never queries the workflow: the test server can leave
time locked when a query races a workflow task, which stalls the next test's skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.readmodel import HandoffRow, ReferralRow
from events.referral import ActionDue
from messaging.outbox import OutboxRow
from pathway import commands as cmd
from tests.workflow.helpers import make_worker, now, start_referral, to_supported
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.integration

WALKS = "walking-group"
Handle = WorkflowHandle[Any, Any]


@contextlib.asynccontextmanager
async def working(
    env: WorkflowEnvironment, engine: Engine, task_queue: str
) -> AsyncIterator[list[Handle]]:
    """A worker for the test; its referrals are terminated before the worker stops, since
    a timer left for a stopped worker would stall the next test's skipping."""
    async with make_worker(env.client, engine, task_queue):
        started: list[Handle] = []
        try:
            yield started
        finally:
            for handle in started:
                with contextlib.suppress(RPCError):
                    await handle.terminate()


async def planned(
    client: Client, engine: Engine, task_queue: str, started: list[Handle]
) -> tuple[Handle, str]:
    """A referral with the default profile, just planned with one handoff to WALKS."""
    handle = await start_referral(client, task_queue)
    started.append(handle)
    await to_supported(handle, [cmd.PrescriptionInput(provider_id=WALKS, service_id="walks")])
    with Session(engine) as session:
        referral_id = handle.id.removeprefix("referral-")
        handoff = session.exec(select(HandoffRow).where(HandoffRow.referral_id == referral_id))
        return handle, handoff.one().handoff_id


async def respond(handle: Handle, handoff_id: str, **fields: Any) -> None:
    await handle.signal(
        ReferralWorkflow.provider_responded,
        cmd.ProviderResponded(
            event_id=uuid.uuid4().hex,
            handoff_id=handoff_id,
            provider_id=WALKS,
            occurred_at=now(),
            **fields,
        ),
    )


async def attend(handle: Handle, handoff_id: str, day: int, status: str) -> None:
    await handle.signal(
        ReferralWorkflow.attendance_reported,
        cmd.AttendanceRecorded(
            event_id=uuid.uuid4().hex,
            handoff_id=handoff_id,
            provider_id=WALKS,
            occurred_at=now(),
            session_date=date(2027, 1, day),
            status=status,
        ),
    )


def row_of(engine: Engine, handle: Handle) -> ReferralRow:
    with Session(engine) as session:
        row = session.get(ReferralRow, handle.id.removeprefix("referral-"))
    assert row is not None
    return row


def overdue(engine: Engine, handle: Handle) -> list[str]:
    return list(json.loads(row_of(engine, handle).overdue))


async def until(engine: Engine, handle: Handle, check: Callable[[ReferralRow], bool]) -> None:
    """Wait for the read model to show a change: a signal is applied and persisted moments
    after it is sent."""
    deadline = time.monotonic() + 10
    while not check(row := row_of(engine, handle)):
        if time.monotonic() > deadline:
            raise AssertionError(f"the read model did not change: {row}")
        await asyncio.sleep(0.05)


async def on_caseload(engine: Engine, handle: Handle, action: str) -> None:
    """Wait until the caseload shows the action due and the outbox holds its event."""
    referral_id = handle.id.removeprefix("referral-")
    kind, _, handoff_id = action.partition(":")

    def raised(row: ReferralRow) -> bool:
        with Session(engine) as session:
            payloads = session.exec(
                select(OutboxRow.payload)
                .where(OutboxRow.key == referral_id)
                .where(OutboxRow.type == ActionDue.TYPE)
            ).all()
        events = [json.loads(p)["data"] for p in payloads]
        return action in json.loads(row.overdue) and any(
            e["action"] == EVENT_ACTION[kind] and e["handoff_id"] == (handoff_id or None)
            for e in events
        )

    await until(engine, handle, raised)


# The action_due event's action for each kind of caseload entry.
EVENT_ACTION = {
    "provider_response": "provider_response",
    "waitlist": "provider_response",  # the provider's answer needs the link worker
    "disengagement_risk": "disengagement",
    "disengagement": "disengagement",
}


def handoff_status(row: ReferralRow, handoff_id: str) -> str:
    return str(next(h["status"] for h in json.loads(row.handoffs) if h["handoff_id"] == handoff_id))


async def test_no_provider_response_within_ten_days_is_an_action_due(
    skipping_env, engine, task_queue
):
    async with working(skipping_env, engine, task_queue) as started:
        handle, handoff_id = await planned(skipping_env.client, engine, task_queue, started)
        action = f"provider_response:{handoff_id}"

        await skipping_env.sleep(timedelta(days=9, hours=23))
        assert action not in overdue(engine, handle)

        await skipping_env.sleep(timedelta(hours=2))
        await on_caseload(engine, handle, action)

        # The provider's answer resolves it.
        await respond(handle, handoff_id, decision="accept")
        await until(engine, handle, lambda r: handoff_status(r, handoff_id) == "accepted")
        assert action not in overdue(engine, handle)


async def test_still_no_response_ten_days_after_the_escalation_fails_the_handoff(
    skipping_env, engine, task_queue
):
    async with working(skipping_env, engine, task_queue) as started:
        handle, handoff_id = await planned(skipping_env.client, engine, task_queue, started)
        action = f"provider_response:{handoff_id}"
        await skipping_env.sleep(timedelta(days=10, hours=1))
        await on_caseload(engine, handle, action)

        await skipping_env.sleep(timedelta(days=10))
        await until(engine, handle, lambda r: handoff_status(r, handoff_id) == "failed")

        (row,) = [h for h in json.loads(row_of(engine, handle).handoffs)]
        assert row["reason_code"] == "no_response"
        assert action not in overdue(engine, handle)


async def test_a_waitlist_longer_than_the_plan_allows_is_an_action_due(
    skipping_env, engine, task_queue
):
    async with working(skipping_env, engine, task_queue) as started:
        within, within_id = await planned(skipping_env.client, engine, task_queue, started)
        beyond, beyond_id = await planned(skipping_env.client, engine, task_queue, started)

        await respond(within, within_id, decision="waitlist", waitlist_band="1_to_3_months")
        await respond(beyond, beyond_id, decision="waitlist", waitlist_band="over_3_months")
        await until(engine, within, lambda r: handoff_status(r, within_id) == "on-hold")
        await on_caseload(engine, beyond, f"waitlist:{beyond_id}")

        # A waitlist answer is a response: the 10-day chase fires for neither.
        await skipping_env.sleep(timedelta(days=11))
        assert overdue(engine, within) == []
        assert overdue(engine, beyond) == [f"waitlist:{beyond_id}"]


async def test_three_did_not_attends_in_a_row_are_a_disengagement_risk(
    skipping_env, engine, task_queue
):
    async with working(skipping_env, engine, task_queue) as started:
        handle, handoff_id = await planned(skipping_env.client, engine, task_queue, started)
        version = row_of(engine, handle).version
        for day, status in ((4, "attended"), (11, "did_not_attend"), (18, "did_not_attend")):
            await attend(handle, handoff_id, day, status)
        await until(engine, handle, lambda r: r.version == version + 3)
        assert "disengagement_risk" not in overdue(engine, handle)

        await attend(handle, handoff_id, 25, "did_not_attend")
        await on_caseload(engine, handle, "disengagement_risk")

        # The next attended session ends the streak and the action.
        await attend(handle, handoff_id, 26, "attended")
        await until(engine, handle, lambda r: r.attended_sessions == 2)
        assert "disengagement_risk" not in overdue(engine, handle)


async def test_no_attendance_for_28_days_is_a_disengagement_action(
    skipping_env, engine, task_queue
):
    async with working(skipping_env, engine, task_queue) as started:
        handle, handoff_id = await planned(skipping_env.client, engine, task_queue, started)

        # An attended session on day 10 restarts the 28 days from then.
        await skipping_env.sleep(timedelta(days=10))
        await attend(handle, handoff_id, 21, "attended")
        await until(engine, handle, lambda r: r.attended_sessions == 1)
        await skipping_env.sleep(timedelta(days=27, hours=23))
        assert "disengagement" not in overdue(engine, handle)

        await skipping_env.sleep(timedelta(hours=2))
        await on_caseload(engine, handle, "disengagement")
