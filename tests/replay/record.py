"""Record the workflow histories that the replay tests hold the code to.

    python -m tests.replay.record              # the scenarios with no history yet
    python -m tests.replay.record NAME ...     # these scenarios (overwrites their files)

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

from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.transitions import TransitionActivities
from infra.db import make_engine
from ops.devstack import temporal_bin
from ops.tables import create_tables
from pathway import commands as cmd
from tests.workflow.helpers import (
    WEMWBS_HIGH,
    WEMWBS_LOW,
    command,
    start_referral,
    to_supported,
    walks,
    wemwbs,
)
from workers.tracing import CommandTraceInterceptor
from workflows.referral import ReferralWorkflow
from workflows.sandbox import RUNNER

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


async def history_bound(client: Client) -> WorkflowHandle[Any, Any]:
    """A run started since ``patches.HISTORY_BOUND``, with the default history limit:
    it records the patch marker and hands over at ``HISTORY_BOUND_EVENTS``."""
    handle = await start_referral(client, QUEUE)
    await to_supported(handle)
    for i in range(60):  # about 10 events each: over the bound well before the end
        await handle.execute_update(
            ReferralWorkflow.assign_link_worker,
            command(cmd.AssignLinkWorker, link_worker_id=f"lw-{i}"),
        )
        if (await handle.describe()).run_id != handle.first_execution_run_id:
            return handle
    raise RuntimeError("the referral did not continue as new")


async def casework_goals_midpoint_activity(client: Client) -> WorkflowHandle[Any, Any]:
    """Structured goals, logged time (logged, corrected, deleted), a mid-point check-in
    with measures and goal updates, and a review that records the goals' attainment."""
    from datetime import UTC, datetime, timedelta

    handle = await start_referral(client, QUEUE)
    await handle.execute_update(ReferralWorkflow.accept_referral, command(cmd.AcceptReferral))
    await handle.execute_update(
        ReferralWorkflow.record_contact_attempt,
        command(cmd.RecordContactAttempt, outcome="contacted"),
    )
    await handle.execute_update(
        ReferralWorkflow.record_assessment,
        command(cmd.RecordAssessment, support_level="2", measures=[wemwbs(WEMWBS_LOW)]),
    )
    await handle.execute_update(
        ReferralWorkflow.agree_plan,
        command(
            cmd.AgreePlan,
            goals=[
                cmd.GoalInput(category="family_friends", words_note_id="note-1"),
                cmd.GoalInput(category="physical_activity"),
            ],
            prescriptions=walks("walking-group"),
        ),
    )
    started = datetime.now(UTC) - timedelta(hours=1)
    logged = command(
        cmd.LogActivity, activity_type="home_visit", direct=True, started_at=started, minutes=55
    )
    await handle.execute_update(ReferralWorkflow.log_activity, logged)
    call = command(
        cmd.LogActivity, activity_type="phone", direct=True, started_at=started, minutes=5
    )
    await handle.execute_update(ReferralWorkflow.log_activity, call)
    await handle.execute_update(
        ReferralWorkflow.correct_activity,
        command(
            cmd.CorrectActivity,
            activity_id=logged.request_id,
            activity_type="home_visit",
            direct=True,
            started_at=started,
            minutes=60,
        ),
    )
    await handle.execute_update(
        ReferralWorkflow.delete_activity,
        command(cmd.DeleteActivity, activity_id=call.request_id, reason_code="logged_in_error"),
    )
    await handle.execute_update(
        ReferralWorkflow.record_checkin,
        command(
            cmd.RecordCheckin,
            on_track=True,
            measures=[wemwbs(WEMWBS_HIGH)],
            goals=[cmd.GoalUpdate(goal=1, status="in_progress")],
        ),
    )
    await handle.execute_update(
        ReferralWorkflow.record_review,
        command(
            cmd.RecordReview,
            decision="dormant",
            measures=[wemwbs(WEMWBS_HIGH)],
            early_reason_code="goals_met",
            goals=[cmd.GoalUpdate(goal=1, status="achieved")],
        ),
    )
    return handle


async def traced_commands(client: Client) -> WorkflowHandle[Any, Any]:
    """Commands and provider facts each sent in a trace of its own, as the API and the
    inbound consumer send them: updates, signals and the activities carry trace headers
    (workers.tracing puts each batch's activity in its caller's trace), including a fact
    that changes nothing and a batch a deadline made after a command."""
    from datetime import UTC, date, datetime

    tracer = TRACER_PROVIDER.get_tracer("replay-recording")
    with tracer.start_as_current_span("POST /referrals"):
        handle = await start_referral(client, QUEUE)
    for name, update, args in (
        ("accept", ReferralWorkflow.accept_referral, command(cmd.AcceptReferral)),
        (
            "contact",
            ReferralWorkflow.record_contact_attempt,
            command(cmd.RecordContactAttempt, outcome="contacted"),
        ),
        (
            "assess",
            ReferralWorkflow.record_assessment,
            command(cmd.RecordAssessment, support_level="2", measures=[wemwbs(WEMWBS_LOW)]),
        ),
        (
            "plan",
            ReferralWorkflow.agree_plan,
            command(cmd.AgreePlan, goal_count=1, prescriptions=walks("walking-group")),
        ),
    ):
        with tracer.start_as_current_span(name):
            await handle.execute_update(update, args)
    handoff_id = next(iter((await handle.query(ReferralWorkflow.get_state)).episode.handoffs))
    for event_id, handoff in (("att-1", handoff_id), ("att-unknown", "no-such-handoff")):
        with tracer.start_as_current_span(f"attendance {event_id}"):
            await handle.signal(
                ReferralWorkflow.attendance_reported,
                cmd.AttendanceRecorded(
                    event_id=event_id,
                    handoff_id=handoff,
                    provider_id="walking-group",
                    occurred_at=datetime.now(UTC),
                    session_date=date.today(),
                    status="attended",
                ),
            )
    with tracer.start_as_current_span("assign"):
        await handle.execute_update(
            ReferralWorkflow.assign_link_worker,
            command(cmd.AssignLinkWorker, link_worker_id="lw-2"),
        )
    return handle


SCENARIOS: dict[str, Scenario] = {
    "short_path": short_path,
    "long_path_with_reentries": long_path_with_reentries,
    "continued_as_new": continued_as_new,
    "casework_goals_midpoint_activity": casework_goals_midpoint_activity,
    "history_bound": history_bound,
    "traced_commands": traced_commands,
}
# Recording spans (exported nowhere), so that the client's TracingInterceptor writes trace
# headers as it does in production; the histories before traced_commands had none.
TRACER_PROVIDER = TracerProvider()


async def record(names: list[str] | None = None, suffix: str = "v1") -> None:
    """Record the named scenarios, or those with no committed history yet: a committed
    history is what running referrals did, and is never re-recorded by accident."""
    chosen = names or [n for n in SCENARIOS if not list(HISTORIES.glob(f"{n}.*.json"))]
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_bin()
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/replay.db")
            create_tables(engine)
            # As production runs them: the client's tracing interceptor, then the worker's.
            tracer = TRACER_PROVIDER.get_tracer("replay-recording")
            client = Client(**{**env.client.config(), "interceptors": [TracingInterceptor(tracer)]})
            activities = TransitionActivities(engine, "urn:linkway:test")
            async with Worker(
                client,
                task_queue=QUEUE,
                workflows=[ReferralWorkflow],
                workflow_runner=RUNNER,
                activities=[activities.record_transition],
                interceptors=[CommandTraceInterceptor()],
            ):
                for name in chosen:
                    handle = await SCENARIOS[name](client)
                    # The first run: for the continue-as-new scenario it ends by handing over.
                    first = client.get_workflow_handle(
                        handle.id, run_id=handle.first_execution_run_id
                    )
                    history = await first.fetch_history()
                    path = HISTORIES / f"{name}.{suffix}.json"
                    path.write_text(history.to_json())
                    print(f"recorded {path.name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    import sys

    asyncio.run(record(sys.argv[1:]))
