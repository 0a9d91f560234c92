"""The referral workflow on the real Temporal dev server: updates, rejections that never
reach history, re-entry, persistence of the read model and outbox, continue-as-new."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError

from activities.readmodel import EpisodeRow, ReferralRow
from messaging.outbox import OutboxRow
from pathway import commands as cmd
from tests.workflow.helpers import (
    WEMWBS_LOW,
    command,
    make_worker,
    start_referral,
    state_of,
    to_supported,
    walks,
    wemwbs,
)
from workflows.referral import ReferralWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


async def test_accept_moves_referral_to_contacting_and_writes_read_model_and_outbox(
    dev_env, engine, task_queue
):
    async with make_worker(dev_env.client, engine, task_queue):
        handle = await start_referral(dev_env.client, task_queue)
        result = await handle.execute_update(
            ReferralWorkflow.accept_referral, command(cmd.AcceptReferral, link_worker_id="lw-1")
        )
        assert result.stage == "contacting"
        referral_id = result.referral_id
    with Session(engine) as session:
        row = session.get(ReferralRow, referral_id)
        assert row is not None and row.stage == "contacting" and row.link_worker_id == "lw-1"
        assert "first_contact" in json.loads(row.deadlines)
        types = [
            r.type for r in session.exec(select(OutboxRow).where(OutboxRow.key == referral_id))
        ]
    assert types == [
        "linkway.referral.received.v1",
        "linkway.referral.accepted.v1",
        "linkway.referral.link_worker_assigned.v1",
    ]


async def test_plan_writes_one_handoff_row_per_prescription(dev_env, engine, task_queue):
    from activities.readmodel import HandoffRow

    async with make_worker(dev_env.client, engine, task_queue):
        handle = await start_referral(dev_env.client, task_queue)
        planned = await to_supported(handle, walks("walking-group", "befriending"))
    with Session(engine) as session:
        rows = session.exec(
            select(HandoffRow).where(HandoffRow.referral_id == planned.referral_id)
        ).all()
    assert sorted((r.provider_id, r.status) for r in rows) == [
        ("befriending", "requested"),
        ("walking-group", "requested"),
    ]


async def test_rejected_update_never_reaches_history(dev_env, engine, task_queue):
    async with make_worker(dev_env.client, engine, task_queue):
        handle = await start_referral(dev_env.client, task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(
                ReferralWorkflow.record_assessment,
                command(cmd.RecordAssessment, support_level="2", measures=[wemwbs(WEMWBS_LOW)]),
            )
        assert "cannot record the assessment" in str(failed.value.cause)
        history = await handle.fetch_history()
    kinds = {e.WhichOneof("attributes") for e in history.events}
    assert "workflow_execution_update_accepted_event_attributes" not in kinds
    assert "workflow_execution_update_rejected_event_attributes" not in kinds


async def test_same_request_id_twice_applies_once(dev_env, engine, task_queue):
    async with make_worker(dev_env.client, engine, task_queue):
        handle = await start_referral(dev_env.client, task_queue)
        await handle.execute_update(ReferralWorkflow.accept_referral, command(cmd.AcceptReferral))
        attempt = command(cmd.RecordContactAttempt, outcome="no_answer")
        first = await handle.execute_update(ReferralWorkflow.record_contact_attempt, attempt)
        second = await handle.execute_update(ReferralWorkflow.record_contact_attempt, attempt)
        state = await state_of(handle)
    assert first.version == second.version
    assert state.episode.contact_attempts == 1


async def test_reentry_after_dormant_opens_a_new_episode_and_keeps_history(
    dev_env, engine, task_queue
):
    async with make_worker(dev_env.client, engine, task_queue):
        handle = await start_referral(dev_env.client, task_queue)
        await handle.execute_update(
            ReferralWorkflow.decline_referral,
            command(cmd.DeclineReferral, reason_code="out_of_area"),
        )
        result = await handle.execute_update(
            ReferralWorkflow.reenter,
            command(cmd.ReEnter, source="self", referrer_org_id="self", reason_codes=["debt"]),
        )
        episodes = await handle.query(ReferralWorkflow.get_episodes)
    assert (result.episode, result.stage) == (2, "triage")
    assert [(e.number, e.final_stage, e.dormant_reason) for e in episodes] == [
        (1, "dormant", "declined"),
        (2, "triage", None),
    ]
    with Session(engine) as session:
        rows = session.exec(
            select(EpisodeRow).where(EpisodeRow.referral_id == result.referral_id)
        ).all()
    assert sorted((r.number, r.stage) for r in rows) == [(1, "dormant"), (2, "triage")]


async def test_continue_as_new_carries_state_and_dedupe(dev_env, engine, task_queue):
    async with make_worker(dev_env.client, engine, task_queue):
        handle = await start_referral(dev_env.client, task_queue, history_limit=40)
        await handle.execute_update(ReferralWorkflow.accept_referral, command(cmd.AcceptReferral))
        repeated = command(cmd.RecordContactAttempt, outcome="message_left")
        await handle.execute_update(ReferralWorkflow.record_contact_attempt, repeated)
        for _ in range(6):
            await handle.execute_update(
                ReferralWorkflow.assign_link_worker,
                command(cmd.AssignLinkWorker, link_worker_id=f"lw-{_}"),
            )
        await handle.execute_update(ReferralWorkflow.record_contact_attempt, repeated)
        desc = await handle.describe()
        state = await state_of(handle)
    assert desc.run_id != handle.first_execution_run_id  # it continued as new
    assert state.episode.contact_attempts == 1
    assert state.episode.link_worker_id == "lw-5"
