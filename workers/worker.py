"""The Temporal worker: runs referral workflows and their activities."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from activities.transitions import TransitionActivities
from infra.db import get_engine
from infra.settings import Settings
from workflows import TASK_QUEUE
from workflows.referral import ReferralWorkflow


def build_worker(client: Client, settings: Settings, task_queue: str = TASK_QUEUE) -> Worker:
    engine = get_engine(settings)
    transitions = TransitionActivities(engine, settings.event_source)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ReferralWorkflow],
        activities=[transitions.record_transition],
    )
