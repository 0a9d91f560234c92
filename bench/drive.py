"""Driving referrals and floor workflows through the same steps, by the workflow client.

A referral's pathway (P1): created, accepted, contacted, assessed with a baseline,
plan agreed with one prescription, three attended sessions reported by the provider
(signals), reviewed early with an improved measure. That is one start, five updates
and three signals; the floor gets one start, five updates and three signals.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle

from activities.readmodel import HandoffRow
from bench.floor import FLOOR_QUEUE, start_floor
from bench.floor_workflow import FloorWorkflow
from pathway import commands as cmd
from pathway.config import load
from workflows import TASK_QUEUE, referral_workflow_id
from workflows.models import NewReferral, ReferralInput
from workflows.referral import ReferralWorkflow, command_update

PROVIDER = "walking-group"
LOW = {str(i): 2 for i in range(1, 15)}  # WEMWBS 28
HIGH = {str(i): 3 for i in range(1, 15)}  # WEMWBS 42: a meaningful improvement
FIRST_SESSION = date(2027, 1, 4)


def _command(cls: type[cmd.Command], **fields: Any) -> Any:
    return cls(request_id=uuid.uuid4().hex, actor_id="lw-bench", **fields)


def _wemwbs(answers: dict[str, int]) -> cmd.MeasureInput:
    return cmd.MeasureInput(instrument="WEMWBS", answers=answers, consent_ref="consent-bench")


async def new_referral(
    client: Client, task_queue: str = TASK_QUEUE, locality: str = "oswestry"
) -> WorkflowHandle[Any, Any]:
    referral_id = uuid.uuid4().hex
    new = NewReferral(
        referral_id=referral_id,
        partner_id="north-wellbeing",
        locality=locality,
        source="gp",
        referrer_org_id="gp-oswestry",
        reason_codes=["loneliness"],
        consent_to_share=True,
        config=load("default"),
    )
    return await client.start_workflow(
        ReferralWorkflow.run,
        ReferralInput(new=new),
        id=referral_workflow_id(referral_id),
        task_queue=task_queue,
    )


async def accept(handle: WorkflowHandle[Any, Any]) -> None:
    await handle.execute_update(command_update(cmd.AcceptReferral), _command(cmd.AcceptReferral))


async def to_supported(handle: WorkflowHandle[Any, Any]) -> None:
    """Accepted, contacted, assessed, plan agreed: four updates."""
    await accept(handle)
    await handle.execute_update(
        command_update(cmd.RecordContactAttempt),
        _command(cmd.RecordContactAttempt, outcome="contacted"),
    )
    await handle.execute_update(
        command_update(cmd.RecordAssessment),
        _command(cmd.RecordAssessment, support_level="2", measures=[_wemwbs(LOW)]),
    )
    prescription = cmd.PrescriptionInput(provider_id=PROVIDER, service_id=f"{PROVIDER}-service")
    await handle.execute_update(
        command_update(cmd.AgreePlan),
        _command(cmd.AgreePlan, goal_count=1, prescriptions=[prescription]),
    )


def handoff_of(engine: Engine, handle: WorkflowHandle[Any, Any]) -> str:
    """The referral's handoff id, from the read model (as the inbound consumer finds it)."""
    referral_id = handle.id.removeprefix("referral-")
    with Session(engine) as session:
        row = session.exec(select(HandoffRow).where(HandoffRow.referral_id == referral_id)).one()
    return row.handoff_id


def attendance(handoff_id: str, n: int) -> cmd.AttendanceRecorded:
    return cmd.AttendanceRecorded(
        event_id=uuid.uuid4().hex,
        handoff_id=handoff_id,
        provider_id=PROVIDER,
        occurred_at=datetime.now(UTC),
        session_date=FIRST_SESSION + timedelta(days=7 * n),
        status="attended",
    )


async def pathway(client: Client, engine: Engine) -> None:
    """One referral through P1's pathway."""
    handle = await new_referral(client)
    await to_supported(handle)
    handoff_id = await asyncio.to_thread(handoff_of, engine, handle)
    for n in range(3):
        await handle.signal(ReferralWorkflow.attendance_reported, attendance(handoff_id, n))
    await handle.execute_update(
        command_update(cmd.RecordReview),
        _command(
            cmd.RecordReview,
            decision="ongoing_support",
            measures=[_wemwbs(HIGH)],
            early_reason_code="bench",
        ),
    )


async def floor_pathway(raw: Client) -> None:
    """The floor's equivalent: one start, four updates, three signals, one update."""
    handle = raw.get_workflow_handle(await start_floor(raw, FLOOR_QUEUE))
    for n in range(4):
        await handle.execute_update(FloorWorkflow.step, n)
    for n in range(3):
        await handle.signal(FloorWorkflow.poke, n)
    await handle.execute_update(FloorWorkflow.step, 4)


async def concurrently(count: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> None:
    """Run ``one`` ``count`` times, at most ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded() -> None:
        async with gate:
            await one()

    await asyncio.gather(*(guarded() for _ in range(count)))
