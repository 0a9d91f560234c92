"""A later command's work runs in its caller's trace (``workers.tracing``), on the dev server.

With a tracer of its own (not the process's), so it reads exactly this workflow's spans:
the activity persisting an update's or a signal's change is in the trace of the span the
caller sent it from; the referral's creation stays in the trace that started it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Worker

from activities.transitions import TransitionActivities
from pathway import commands as cmd
from tests.workflow.helpers import command, contact_assess_and_plan, start_referral, state_of
from workers.tracing import CommandTraceInterceptor
from workflows import RECORD_TRANSITION
from workflows.referral import ReferralWorkflow
from workflows.sandbox import RUNNER

pytestmark = pytest.mark.integration

RUN = f"RunActivity:{RECORD_TRANSITION}"


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


async def test_an_update_and_a_signal_have_their_activity_in_their_callers_trace(
    dev_env, engine, task_queue
) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("test")
    client = Client(**{**dev_env.client.config(), "interceptors": [TracingInterceptor(tracer)]})
    activities = TransitionActivities(engine, "urn:linkway:test")
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ReferralWorkflow],
        workflow_runner=RUNNER,
        activities=[activities.record_transition],
        interceptors=[CommandTraceInterceptor()],
    ):
        with tracer.start_as_current_span("create") as created:
            handle = await start_referral(client, task_queue)
        first = created.get_span_context().trace_id

        async def runs_after(count: int) -> list[ReadableSpan]:
            for _ in range(100):
                runs = [s for s in exported.get_finished_spans() if s.name == RUN]
                if len(runs) > count:
                    return runs
                await asyncio.sleep(0.05)
            raise AssertionError("no activity ran")

        runs = await runs_after(0)
        assert [trace_of(s) for s in runs] == [first]

        with tracer.start_as_current_span("accept") as accepting:
            await handle.execute_update(
                ReferralWorkflow.accept_referral, command(cmd.AcceptReferral)
            )
        runs = await runs_after(1)
        assert trace_of(runs[-1]) == accepting.get_span_context().trace_id != first
        handler = next(s for s in exported.get_finished_spans() if s.name.startswith("HandleUp"))
        assert trace_of(handler) == first  # TracingInterceptor's handler span, linked only

        # A signal (a provider's report) that changes the case: the same.
        await contact_assess_and_plan(handle)
        state = await state_of(handle)
        handoff_id = next(iter(state.episode.handoffs))
        count = len(await runs_after(0))

        def attended(handoff: str, event_id: str) -> cmd.AttendanceRecorded:
            return cmd.AttendanceRecorded(
                event_id=event_id,
                handoff_id=handoff,
                provider_id="walking-group",
                occurred_at=datetime.now(UTC),
                session_date=date.today(),
                status="attended",
            )

        with tracer.start_as_current_span("attendance") as reporting:
            await handle.signal(ReferralWorkflow.attendance_reported, attended(handoff_id, "a-1"))
        runs = await runs_after(count)
        assert trace_of(runs[-1]) == reporting.get_span_context().trace_id

        # A fact that changes nothing keeps no trace: the next command's work is its own.
        with tracer.start_as_current_span("unknown handoff") as unknown:
            await handle.signal(ReferralWorkflow.attendance_reported, attended("nope", "a-2"))
        with tracer.start_as_current_span("assign") as assigning:
            await handle.execute_update(
                ReferralWorkflow.assign_link_worker,
                command(cmd.AssignLinkWorker, link_worker_id="lw-2"),
            )
        runs = await runs_after(count + 1)
        assert trace_of(runs[-1]) == assigning.get_span_context().trace_id
        assert unknown.get_span_context().trace_id not in {trace_of(s) for s in runs}
