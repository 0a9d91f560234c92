"""The worker's half of ``workflows.tracing``: a later command's work joins its request's trace.

``temporalio.contrib.opentelemetry.TracingInterceptor`` (on the client, and so on the
worker) runs every update and signal handler in the context of the workflow's start and
only *links* the caller's span; and the referral workflow persists from its main loop,
which runs in that same start context. Left there, the activity recording a command's
transition, the outbox rows it writes, the relay's send and the consumers' handling all
land in the referral's first trace, whichever request moved it.

This interceptor sits inside ``TracingInterceptor`` (the worker puts the client's
interceptors first), and:

- around an update's or signal's handler, hands the caller's trace carrier (the
  ``_tracer-data`` header the client's interceptor wrote, which Temporal keeps in the
  history, so replay sees the same) to the workflow (``workflows.tracing.CALLER``);
- when the workflow starts the activity for a batch (``PERSISTING_FOR``), makes the
  caller's context current, so ``TracingInterceptor``'s ``StartActivity`` span (run just
  after this) is a child of the caller's span and its context goes in the activity's
  header: ``RunActivity``, and everything downstream, are in the request's trace.

It adds no span of its own and changes no command; on replay ``TracingInterceptor``
makes no spans and writes no headers, so nothing here can make a replay differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import opentelemetry.context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadConverter
from temporalio.worker import (
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from workflows import tracing

# Where TracingInterceptor puts the caller's context (its default, which we do not change).
HEADER = "_tracer-data"
# Only the trace's identity is carried over: W3C trace context, not baggage.
PROPAGATOR = TraceContextTextMapPropagator()
KEYS = ("traceparent", "tracestate")


def carrier_from_headers(headers: Mapping[str, Payload]) -> tracing.Carrier | None:
    """The W3C trace context (``traceparent``, maybe ``tracestate``) in a Temporal
    header, or None. Anything that is not a flat mapping of strings is ignored: a
    header is the caller's to write, and a bad one must not fail a workflow task."""
    payload = headers.get(HEADER)
    if not payload:
        return None
    try:
        carrier = PayloadConverter.default.from_payloads([payload])[0]
    except Exception:
        return None
    if not isinstance(carrier, dict) or not isinstance(carrier.get("traceparent"), str):
        return None
    return {k: v for k, v in carrier.items() if k in KEYS and isinstance(v, str)}


class CommandTraceInterceptor(Interceptor):
    """Give it to the worker after the client's ``TracingInterceptor`` (``build_worker``)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        with tracing.handling_for(carrier_from_headers(input.headers)):
            return await super().handle_update_handler(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        with tracing.handling_for(carrier_from_headers(input.headers)):
            await super().handle_signal(input)


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        carrier = tracing.PERSISTING_FOR.get()
        if carrier is None:
            return super().start_activity(input)
        # The caller's span as parent, on top of the current context (which also holds
        # TracingInterceptor's own entry for the workflow).
        context = PROPAGATOR.extract(carrier, context=opentelemetry.context.get_current())
        token = opentelemetry.context.attach(context)
        try:
            return super().start_activity(input)
        finally:
            opentelemetry.context.detach(token)
