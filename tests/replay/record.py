"""Record the workflow histories that the replay tests hold the code to.

    python -m tests.replay.record

Re-record only when a change is meant to alter the command sequence, and then only
behind ``workflow.patched``: the old histories must still replay, so keep the old files
and add new ones beside them (name them with the date).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from infra.db import make_engine
from ops.devstack import temporal_bin
from ops.tables import create_tables
from pathway import commands as cmd
from tests.workflow.helpers import (
    WEMWBS_HIGH,
    command,
    make_worker,
    start_referral,
    to_supported,
    wemwbs,
)
from workflows.referral import ReferralWorkflow

HISTORIES = Path(__file__).parent / "histories"
QUEUE = "replay-recording"
Scenario = Callable[[Client], Awaitable[WorkflowHandle[Any, Any]]]


async def short_path(client: Client) -> WorkflowHandle[Any, Any]:
    """Received, declined, dormant."""
    handle = await start_referral(client, QUEUE)
    await handle.execute_update(
        ReferralWorkflow.decline_referral, command(cmd.DeclineReferral, reason_code="out_of_area")
    )
    return handle


async def long_path_with_reentries(client: Client) -> WorkflowHandle[Any, Any]:
    """The whole pathway with attendance, an early review, and two re-entries."""
    handle = await start_referral(client, QUEUE)
    await to_supported(handle)
    handoff_id = next(iter((await handle.query(ReferralWorkflow.get_state)).episode.handoffs))
    for day in range(1, 5):
        from datetime import UTC, date, datetime

        await handle.signal(
            ReferralWorkflow.attendance_reported,
            cmd.AttendanceRecorded(
                event_id=f"att-{day}",
                handoff_id=handoff_id,
                provider_id="walking-group",
                occurred_at=datetime.now(UTC),
                session_date=date(2026, 1, day),
                status="attended",
            ),
        )
    await handle.execute_update(
        ReferralWorkflow.record_review,
        command(
            cmd.RecordReview,
            decision="dormant",
            measures=[wemwbs(WEMWBS_HIGH)],
            early_reason_code="moving_away",
        ),
    )
    for _ in range(2):
        await handle.execute_update(
            ReferralWorkflow.reenter,
            command(cmd.ReEnter, source="self", referrer_org_id="self"),
        )
        await handle.execute_update(
            ReferralWorkflow.end_episode, command(cmd.EndEpisode, reason_code="withdrawn")
        )
    return handle


async def continued_as_new(client: Client) -> WorkflowHandle[Any, Any]:
    """A run that hands over to a new one (history limit lowered)."""
    handle = await start_referral(client, QUEUE, history_limit=30)
    await to_supported(handle)
    for i in range(4):
        await handle.execute_update(
            ReferralWorkflow.assign_link_worker,
            command(cmd.AssignLinkWorker, link_worker_id=f"lw-{i}"),
        )
    return handle


SCENARIOS: dict[str, Scenario] = {
    "short_path": short_path,
    "long_path_with_reentries": long_path_with_reentries,
    "continued_as_new": continued_as_new,
}


async def record(suffix: str = "v1") -> None:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_bin()
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/replay.db")
            create_tables(engine)
            async with make_worker(env.client, engine, QUEUE):
                for name, scenario in SCENARIOS.items():
                    handle = await scenario(env.client)
                    # The first run: for the continue-as-new scenario it ends by handing over.
                    first = env.client.get_workflow_handle(
                        handle.id, run_id=handle.first_execution_run_id
                    )
                    history = await first.fetch_history()
                    path = HISTORIES / f"{name}.{suffix}.json"
                    path.write_text(history.to_json())
                    print(f"recorded {path.name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
