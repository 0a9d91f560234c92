"""Support levels on the time-skipping server: the level 1 short path (signposting, then a
signpost check four weeks on, no check-in, no review, no follow-up) and a level with its
own review date, with the packaged default profile's real durations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pathway import commands as cmd
from pathway.config import PathwayConfig, load
from tests.workflow.helpers import (
    command,
    contact_assess_and_plan,
    make_worker,
    start_referral,
    state_of,
)
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.integration


async def test_level_1_signposting_ends_with_a_check_not_a_review(skipping_env, engine, task_queue):
    client = skipping_env.client
    async with make_worker(client, engine, task_queue):
        handle = await start_referral(client, task_queue)
        await handle.execute_update(ReferralWorkflow.accept_referral, command(cmd.AcceptReferral))
        await handle.execute_update(
            ReferralWorkflow.record_contact_attempt,
            command(cmd.RecordContactAttempt, outcome="contacted"),
        )
        await handle.execute_update(
            ReferralWorkflow.record_assessment,
            command(cmd.RecordAssessment, support_level="1"),
        )
        await handle.execute_update(
            ReferralWorkflow.agree_plan,
            command(
                cmd.AgreePlan,
                goal_count=1,
                signposts=[cmd.SignpostInput(category="benefits_advice", service_id="cab")],
            ),
        )
        state = await state_of(handle)
        plan_at = state.episode.first_plan_at
        assert plan_at is not None
        assert (state.episode.path, list(state.episode.deadlines)) == ("signposting", ["review"])

        # Three weeks on nothing is due; at four weeks the check is.
        await skipping_env.sleep(timedelta(days=21))
        assert (await state_of(handle)).episode.overdue == []
        await skipping_env.sleep(timedelta(days=8))
        state = await state_of(handle)
        assert (state.episode.stage, state.episode.overdue) == ("review", ["review"])
        assert state.episode.deadlines == {}

        checked = await handle.execute_update(
            ReferralWorkflow.record_signpost_check,
            command(cmd.RecordSignpostCheck, outcome="connected"),
        )
        assert checked.stage == "dormant"
        # No follow-up opens on the short path: months later nothing is due.
        await skipping_env.sleep(timedelta(days=200))
        state = await state_of(handle)
    assert (state.episode.deadlines, state.episode.overdue) == ({}, [])
    assert state.summary().path == "signposting"


async def test_a_level_with_its_own_review_date(skipping_env, engine, task_queue):
    client = skipping_env.client
    default = load("default").model_dump()
    levels = {**default["levels"], "3": {"review_after": "5 months"}}
    config = PathwayConfig.model_validate({**default, "levels": levels})
    async with make_worker(client, engine, task_queue):
        level_3 = await start_referral(client, task_queue, config=config)
        level_2 = await start_referral(client, task_queue, config=config)
        for handle, level in ((level_3, "3"), (level_2, "2")):
            await handle.execute_update(
                ReferralWorkflow.accept_referral, command(cmd.AcceptReferral)
            )
            await contact_assess_and_plan(handle, prescriptions=[], support_level=level)

        # At three months and a few days level 2 is at review, level 3 not yet.
        await skipping_env.sleep(timedelta(days=95))
        assert (await state_of(level_2)).episode.stage == "review"
        assert (await state_of(level_3)).episode.stage == "supported"
        await skipping_env.sleep(timedelta(days=60))
        state = await state_of(level_3)
    assert state.episode.stage == "review"
