"""A referral that lives for years: thousands of partner signals and many episodes stay
correct while continue-as-new keeps each run's history bounded."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import date, timedelta

import pytest

from pathway import commands as cmd
from tests.workflow.helpers import (
    command,
    make_worker,
    now,
    start_referral,
    state_of,
    to_supported,
)
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.integration

SIGNALS = int(os.environ.get("LINKWAY_ENDURANCE_SIGNALS", "5000"))
REENTRIES = 20
HISTORY_LIMIT = 1_500
BATCH = 100
# How far past its limit a run may go: when it decides to continue as new, at most one
# batch of signals is in flight (each batch is applied before the next is sent), and in
# the worst case, on a loaded machine, each lands in a workflow task of its own: the
# signal, the task's three events and its persistence activity's three. Without
# continue-as-new the run would hold some 35,000 events.
OVERSHOOT = 7 * BATCH


async def until_applied(handle, count: int) -> None:
    for _ in range(400):
        if (await state_of(handle)).episode.attended_sessions >= count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"the workflow did not apply {count} attendance reports")


async def test_5000_attendance_signals_and_20_reentries_with_bounded_history(
    dev_env, engine, task_queue
):
    async with make_worker(dev_env.client, engine, task_queue):
        handle = await start_referral(dev_env.client, task_queue, history_limit=HISTORY_LIMIT)
        await to_supported(handle)
        handoff_id = next(iter((await state_of(handle)).episode.handoffs))

        first_day = date(2020, 1, 1)
        facts = [
            cmd.AttendanceRecorded(
                event_id=uuid.uuid4().hex,
                handoff_id=handoff_id,
                provider_id="walking-group",
                occurred_at=now(),
                session_date=first_day + timedelta(days=i),
                status="attended",
            )
            for i in range(SIGNALS)
        ]
        # Facts arrive as a consumer delivers them: a batch at a time, each applied before
        # the next. (An unbroken flood to one workflow would starve continue-as-new: the
        # server refuses it while new signals keep landing, temporalio/temporal#1289.)
        for start in range(0, SIGNALS, BATCH):
            batch = facts[start : start + BATCH]
            await asyncio.gather(
                *(handle.signal(ReferralWorkflow.attendance_reported, f) for f in batch)
            )
            await until_applied(handle, start + len(batch))
        # A replayed delivery of already-seen events changes nothing.
        for fact in facts[-10:]:
            await handle.signal(ReferralWorkflow.attendance_reported, fact)

        for _ in range(REENTRIES):
            await handle.execute_update(
                ReferralWorkflow.end_episode, command(cmd.EndEpisode, reason_code="withdrawn")
            )
            await handle.execute_update(
                ReferralWorkflow.reenter,
                command(cmd.ReEnter, source="self", referrer_org_id="self"),
            )

        state = await state_of(handle)
        runs = 0
        async for execution in dev_env.client.list_workflows(f"WorkflowId = '{handle.id}'"):
            runs += 1
            assert (
                execution.history_length is None
                or execution.history_length <= HISTORY_LIMIT + OVERSHOOT
            )
        history = await dev_env.client.get_workflow_handle(handle.id).fetch_history()

    first = state.past_episodes[0]
    assert first.attended_sessions == SIGNALS
    assert first.outcomes == ["engagement", "connection"]
    assert state.episode.number == REENTRIES + 1
    assert [e.number for e in state.past_episodes] == list(range(1, REENTRIES + 1))
    assert runs > 1, "the workflow never continued as new"
    assert len(history.events) <= HISTORY_LIMIT + OVERSHOOT
