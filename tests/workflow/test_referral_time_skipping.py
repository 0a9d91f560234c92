"""The whole pathway with the real default durations (5 working days, 3-month review,
6-month follow-up) on the time-skipping test server: months pass in seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pathway import commands as cmd
from tests.workflow.helpers import (
    WEMWBS_HIGH,
    command,
    contact_assess_and_plan,
    make_worker,
    start_referral,
    state_of,
    wemwbs,
)
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.integration


async def test_full_pathway_with_default_durations(skipping_env, engine, task_queue):
    client = skipping_env.client
    async with make_worker(client, engine, task_queue):
        handle = await start_referral(client, task_queue)
        await handle.execute_update(ReferralWorkflow.accept_referral, command(cmd.AcceptReferral))

        # Nobody rings for a fortnight: the first-contact deadline falls due.
        await skipping_env.sleep(timedelta(days=14))
        state = await state_of(handle)
        assert "first_contact" in state.episode.overdue

        planned = await contact_assess_and_plan(handle)
        assert planned.stage == "supported"
        state = await state_of(handle)
        plan_at = state.episode.first_plan_at
        assert plan_at is not None
        assert state.episode.outcomes == ["engagement"]

        # Three months on, the review is due and the person is at review.
        await skipping_env.sleep(timedelta(days=93))
        state = await state_of(handle)
        assert state.episode.stage == "review"
        assert {"review", "midpoint_checkin"} <= set(state.episode.overdue)

        reviewed = await handle.execute_update(
            ReferralWorkflow.record_review,
            command(cmd.RecordReview, decision="ongoing_support", measures=[wemwbs(WEMWBS_HIGH)]),
        )
        assert reviewed.stage == "ongoing_support"
        state = await state_of(handle)
        assert "wellbeing_reviewed" in state.episode.outcomes
        followup_due = state.episode.deadlines["followup"]
        assert (followup_due - plan_at).days in range(181, 185)  # six calendar months

        # The sustained-outcome follow-up falls due at six months.
        await skipping_env.sleep(timedelta(days=95))
        state = await state_of(handle)
        assert "followup" in state.episode.overdue
        await handle.execute_update(
            ReferralWorkflow.record_followup,
            command(cmd.RecordFollowup, measures=[wemwbs(WEMWBS_HIGH)]),
        )
        state = await state_of(handle)
    assert state.episode.outcomes == ["engagement", "wellbeing_reviewed", "sustained_reviewed"]
    assert state.episode.overdue == [] or set(state.episode.overdue) <= {
        "provider_response:" + h for h in state.episode.handoffs
    } | {"disengagement"}


async def test_unanswered_contact_attempts_make_the_case_dormant_not_closed(
    skipping_env, engine, task_queue
):
    client = skipping_env.client
    async with make_worker(client, engine, task_queue):
        handle = await start_referral(client, task_queue)
        await handle.execute_update(ReferralWorkflow.accept_referral, command(cmd.AcceptReferral))
        for _ in range(3):
            await skipping_env.sleep(timedelta(days=2))
            result = await handle.execute_update(
                ReferralWorkflow.record_contact_attempt,
                command(cmd.RecordContactAttempt, outcome="no_answer"),
            )
        assert result.stage == "dormant"
        # Dormant, not closed: the workflow is still running and the person can come back.
        await skipping_env.sleep(timedelta(days=365))
        back = await handle.execute_update(
            ReferralWorkflow.reenter,
            command(cmd.ReEnter, source="self", referrer_org_id="self"),
        )
    assert (back.episode, back.stage) == (2, "triage")
