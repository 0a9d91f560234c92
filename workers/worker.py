"""The Temporal worker: runs referral workflows and their activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.transitions import TransitionActivities
from infra.db import get_engine
from infra.settings import Settings
from workers.tracing import CommandTraceInterceptor
from workflows import TASK_QUEUE
from workflows.referral import ReferralWorkflow
from workflows.sandbox import RUNNER

# A workflow's next task goes first to the worker that ran its last one (its sticky
# queue, where the workflow is cached). If that worker was killed, the task waits this
# long before any worker may take it: that wait is what a command in flight costs when
# a worker dies (the SDK's 10 s default was the whole stall). Shorter still would send a
# task to another worker, to replay the history from the start, whenever its own worker
# is merely busy for a moment, which costs more than it saves on two cores.
STICKY_SCHEDULE_TO_START = timedelta(seconds=2)


def build_worker(client: Client, settings: Settings, task_queue: str = TASK_QUEUE) -> Worker:
    engine = get_engine(settings)
    transitions = TransitionActivities(engine, settings.event_source)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ReferralWorkflow],
        workflow_runner=RUNNER,
        activities=[transitions.record_transition],
        # After the client's TracingInterceptor (the worker puts those first): a later
        # command's activity joins its request's trace (workers.tracing).
        interceptors=[CommandTraceInterceptor()],
        sticky_queue_schedule_to_start_timeout=STICKY_SCHEDULE_TO_START,
        # On SIGTERM the worker stops polling and lets running activities finish (an
        # activity cut short is retried elsewhere, but a finished one costs nothing).
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
    )
