"""A referral whose state was stored at an earlier schema version (a continue-as-new
input written before versions existed, committed as JSON) starts on today's worker,
takes commands, and continues as new again at the current version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session

from activities.readmodel import ReferralRow
from pathway import commands as cmd
from pathway import versions
from tests.workflow.helpers import command, make_worker, state_of
from workflows import REFERRAL_WORKFLOW, referral_workflow_id
from workflows.referral import ReferralWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

V1_INPUT = Path(__file__).parent / "states" / "referral_input.v1.json"


async def test_a_workflow_continued_from_a_version_1_state_runs_on_todays_worker(
    dev_env, engine, task_queue
):
    stored = json.loads(V1_INPUT.read_text())
    referral_id = stored["state"]["referral_id"] + task_queue[-8:]
    stored["state"]["referral_id"] = referral_id
    # A small history limit, so it continues as new again, now at the current version.
    stored["history_limit"] = 30
    async with make_worker(dev_env.client, engine, task_queue):
        # The raw stored JSON, exactly as continue-as-new left it before versions:
        # the worker's decoding upcasts it, not this test.
        handle = await dev_env.client.start_workflow(
            REFERRAL_WORKFLOW, stored, id=referral_workflow_id(referral_id), task_queue=task_queue
        )
        for n in range(8):
            result = await handle.execute_update(
                ReferralWorkflow.assign_link_worker,
                command(cmd.AssignLinkWorker, link_worker_id=f"lw-{n}"),
            )
        state = await state_of(handle)
        desc = await handle.describe()

    assert desc.run_id != handle.first_execution_run_id  # continued as new from v2 state
    assert state.schema_version == versions.STATE_VERSION
    assert state.episode.link_worker_id == "lw-7" and result.version == state.version
    v1 = stored["state"]["episode"]
    assert set(state.episode.handoffs) == set(v1["handoffs"])  # nothing lost on the way
    assert {k: m.measurement_id for k, m in state.episode.baseline.items()} == {
        k: m["measurement_id"] for k, m in v1["baseline"].items()
    }
    assert state.version > stored["state"]["version"]
    with Session(engine) as session:
        row = session.get(ReferralRow, referral_id)
    assert row is not None and row.link_worker_id == "lw-7" and row.version == state.version
