"""Driving a referral workflow in tests: start one, send commands, read its state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.transitions import TransitionActivities
from pathway import commands as cmd
from pathway.config import PathwayConfig, load
from pathway.state import CaseState
from workflows import referral_workflow_id
from workflows.models import CommandResult, NewReferral, ReferralInput
from workflows.referral import ReferralWorkflow
from workflows.sandbox import RUNNER

WEMWBS_LOW = {str(i): 2 for i in range(1, 15)}  # total 28
WEMWBS_HIGH = {str(i): 3 for i in range(1, 15)}  # total 42


def make_worker(client: Client, engine: Engine, task_queue: str) -> Worker:
    activities = TransitionActivities(engine, "urn:linkway:test")
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ReferralWorkflow],
        workflow_runner=RUNNER,
        activities=[activities.record_transition],
    )


async def start_referral(
    client: Client,
    task_queue: str,
    config: PathwayConfig | None = None,
    history_limit: int | None = None,
    consent: bool = True,
) -> WorkflowHandle[Any, Any]:
    referral_id = uuid.uuid4().hex
    extra = {"history_limit": history_limit} if history_limit else {}
    return await client.start_workflow(
        ReferralWorkflow.run,
        ReferralInput(
            new=NewReferral(
                referral_id=referral_id,
                partner_id="north-wellbeing",
                locality="oswestry",
                source="gp",
                referrer_org_id="gp-practice-1",
                reason_codes=["loneliness"],
                consent_to_share=consent,
                config=config or load("default"),
            ),
            **extra,
        ),
        id=referral_workflow_id(referral_id),
        task_queue=task_queue,
    )


def command(cls: type[cmd.Command], **fields: Any) -> Any:
    return cls(request_id=uuid.uuid4().hex, actor_id="lw-1", **fields)


def wemwbs(answers: dict[str, int]) -> cmd.MeasureInput:
    return cmd.MeasureInput(instrument="WEMWBS", answers=answers, consent_ref="consent-1")


async def state_of(handle: WorkflowHandle[Any, Any]) -> CaseState:
    return await handle.query(ReferralWorkflow.get_state)


def now() -> datetime:
    return datetime.now(UTC)


def walks(*providers: str) -> list[cmd.PrescriptionInput]:
    return [cmd.PrescriptionInput(provider_id=p, service_id=f"{p}-service") for p in providers]


async def contact_assess_and_plan(
    handle: WorkflowHandle[Any, Any],
    prescriptions: list[cmd.PrescriptionInput] | None = None,
    support_level: str = "2",
) -> CommandResult:
    """From contacting to supported: contacted, assessed with a baseline WEMWBS, plan agreed."""
    await handle.execute_update(
        ReferralWorkflow.record_contact_attempt,
        command(cmd.RecordContactAttempt, outcome="contacted"),
    )
    await handle.execute_update(
        ReferralWorkflow.record_assessment,
        command(cmd.RecordAssessment, support_level=support_level, measures=[wemwbs(WEMWBS_LOW)]),
    )
    return await handle.execute_update(
        ReferralWorkflow.agree_plan,
        command(
            cmd.AgreePlan,
            goal_count=1,
            prescriptions=walks("walking-group") if prescriptions is None else prescriptions,
        ),
    )


async def to_supported(
    handle: WorkflowHandle[Any, Any], prescriptions: list[cmd.PrescriptionInput] | None = None
) -> CommandResult:
    """From triage to supported."""
    await handle.execute_update(ReferralWorkflow.accept_referral, command(cmd.AcceptReferral))
    return await contact_assess_and_plan(handle, prescriptions)
