"""One trace per request, across every process it touches, and the metrics an operator
reads, on the real embedded servers with the worker, relay, API and both consumers in
this process (their spans and metrics land in the in-memory readers of ``telemetry``).

The trace of ``POST /referrals`` runs: the API's server span -> the workflow update and
its activity (Temporal's interceptor) -> the SQL that writes the outbox row -> the
relay's send (kafka-python instrumentation, parented by the context stored on the row)
-> the payment consumer's handling (faststream). A later command's request (the plan)
has a trace of its own that runs the same way (``workers.tracing``): through the
activity for the transition it caused, the relay's sends, the payment engine's claim
and ledger entry for its engagement outcome, and the handoff; when the provider sends
its response with the handoff's trace context (as a partner that propagates W3C context
does), through the provider consumer into the workflow's signal and the activity that
records it. A provider's attendance report over HTTP has its own trace the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from events import topics
from events.envelope import new_event
from infra.db import get_engine
from infra.settings import PaymentSettings
from ops.health import register_gauges
from payments.engine import PaymentEngine
from tests.conftest import Telemetry, free_port, temporal_address
from tests.integration.stack import Stack, running_stack
from workers import payments, providers
from workflows import RECORD_TRANSITION

pytestmark = pytest.mark.integration

GP, NORTH = "referrer:gp-oswestry", "tier_one:north-wellbeing"
WALKS = "walking-group"
REFERRAL = {
    "locality": "oswestry",
    "source": "gp",
    "referrer_org_id": "gp-1",
    "reason_codes": ["loneliness"],
    "consent_to_share": True,
    "person": {
        "given_name": "Test",
        "family_name": "Person",
        "nhs_number": "943 476 5919",
        "date_of_birth": "1950-01-01",
    },
}
WEMWBS = {
    "instrument": "WEMWBS",
    "consent_ref": "c-1",
    "answers": {str(i): 2 for i in range(1, 15)},
}


@contextlib.asynccontextmanager
async def consumers(stack: Stack, tag: str) -> AsyncIterator[None]:
    """Both consumers, in their own groups so that other tests' offsets do not matter."""
    engine = get_engine(stack.settings)
    from infra import temporal

    client = await temporal.connect(stack.settings)
    money = PaymentEngine.from_settings(engine, PaymentSettings(), stack.settings.data_dir)
    brokers = [
        payments.build(stack.settings, engine, money, group_id=f"{tag}.payments"),
        providers.build(stack.settings, client, engine, group_id=f"{tag}.providers"),
    ]
    for broker in brokers:
        await broker.start()
    try:
        yield
    finally:
        for broker in brokers:
            await broker.stop()


async def spans_until(
    telemetry: Telemetry, done: Callable[[list[ReadableSpan]], bool], seconds: float = 60
) -> list[ReadableSpan]:
    deadline = time.monotonic() + seconds
    while True:
        found = list(telemetry.spans.get_finished_spans())
        if done(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


def in_trace(spans: list[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def handled(spans: list[ReadableSpan], kind: SpanKind, topic: str) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind and topic in s.name]


def statement(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get("db.statement", ""))


def server_span(spans: list[ReadableSpan], route: str) -> ReadableSpan:
    found = [s for s in spans if s.kind == SpanKind.SERVER and s.name == route]
    assert found, sorted({s.name for s in spans if s.kind == SpanKind.SERVER})
    return found[-1]


async def command(stack: Stack, rid: str, path: str, body: dict[str, Any]) -> None:
    seen = await stack.http.get(f"/referrals/{rid}", headers=stack.auth(NORTH))
    done = await stack.http.post(
        f"/referrals/{rid}/{path}",
        json={**body, "expected_version": seen.json()["version"]},
        headers=stack.auth(NORTH, key=True),
    )
    assert done.status_code == 200, done.text


def handoff_trace_context(bootstrap: str, rid: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The handoff Linkway sent the provider, as the provider reads it: its id and the
    trace headers a provider that propagates W3C trace context sends back."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        topic = topics.HANDOFFS_PREFIX + WALKS
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key == rid.encode():
                        body = json.loads(record.value)
                        trace = [(k, v) for k, v in record.headers if k == "traceparent"]
                        return body["data"]["handoff_id"], trace
    finally:
        consumer.close()
    raise AssertionError("no handoff reached the provider's topic")


def points(data: MetricsData | None) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Every metric's data points as (attributes, value or histogram count)."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = getattr(point, "count", None)
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return found


async def test_one_trace_runs_from_the_request_through_every_process_and_metrics_count_it(
    telemetry: Telemetry, dev_env, broker, tmp_path
) -> None:
    telemetry.spans.clear()
    tag = f"t{uuid.uuid4().hex[:8]}"
    async with (
        running_stack(temporal_address(dev_env), broker, tmp_path, free_port()) as stack,
        consumers(stack, tag),
    ):
        register_gauges(get_engine(stack.settings), stack.settings)
        made = await stack.http.post("/referrals", json=REFERRAL, headers=stack.auth(GP, True))
        assert made.status_code == 201, made.text
        rid = made.json()["referral_id"]
        created = server_span(list(telemetry.spans.get_finished_spans()), "POST /referrals")
        assert created.context is not None
        first = created.context.trace_id

        def reached_payments(spans: list[ReadableSpan]) -> bool:
            return bool(handled(in_trace(spans, first), SpanKind.CONSUMER, topics.REFERRALS))

        trace = in_trace(await spans_until(telemetry, reached_payments), first)
        names = {s.name for s in trace}
        assert any(n.startswith("RunActivity:") for n in names), names
        assert any(n.startswith("HandleUpdate:") for n in names), sorted(names)
        assert any(s.attributes and "db.system" in str(dict(s.attributes)) for s in trace)
        sends = handled(trace, SpanKind.PRODUCER, topics.REFERRALS)
        assert sends, names
        # The relay's send hangs under a span of the activity that wrote the row.
        ids = {s.context.span_id for s in trace if s.context is not None}
        assert all(s.parent is not None and s.parent.span_id in ids for s in sends)
        received = handled(trace, SpanKind.CONSUMER, topics.REFERRALS)
        assert any(
            s.parent is not None
            and s.parent.span_id in {p.context.span_id for p in sends if p.context}
            for s in received
        ), [(s.name, s.parent) for s in received]

        # A later command: its request's trace runs on through the workflow's activity
        # for the transition it caused (workers.tracing), the outbox row and the relay's
        # send, to the payment consumer's claim and the ledger entry for the plan's
        # engagement outcome; the referral's first trace gets none of it.
        await command(stack, rid, "accept", {"link_worker_id": "lw-1"})
        await command(stack, rid, "contact-attempts", {"outcome": "contacted"})
        await command(stack, rid, "assessment", {"support_level": "2", "measures": [WEMWBS]})
        telemetry.spans.clear()
        plan = {"goal_count": 1, "prescriptions": [{"provider_id": WALKS, "service_id": "walks"}]}
        await command(stack, rid, "plan", plan)
        planned = server_span(
            list(telemetry.spans.get_finished_spans()), "POST /referrals/{referral_id}/plan"
        )
        assert planned.context is not None
        second = planned.context.trace_id
        assert second != first

        def reached_claim(spans: list[ReadableSpan]) -> bool:
            return bool(handled(in_trace(spans, second), SpanKind.CONSUMER, topics.OUTCOMES))

        spans = await spans_until(telemetry, reached_claim)
        trace = in_trace(spans, second)
        names = {s.name for s in trace}
        assert {"StartWorkflowUpdate:agree_plan", f"RunActivity:{RECORD_TRANSITION}"} <= names
        assert handled(trace, SpanKind.PRODUCER, topics.OUTCOMES), sorted(names)
        assert handled(trace, SpanKind.CONSUMER, topics.OUTCOMES), sorted(names)
        assert handled(trace, SpanKind.PRODUCER, topics.HANDOFFS_PREFIX + WALKS)
        assert any("INSERT INTO ledger_entries" in statement(s) for s in trace), sorted(names)
        # The update's handler span stays in the workflow's trace, linked to the request.
        handler = [s for s in spans if s.name == "HandleUpdate:agree_plan"]
        assert handler and handler[0].context is not None
        assert handler[0].context.trace_id == first
        assert any(link.context.trace_id == second for link in handler[0].links)
        assert not [s for s in in_trace(spans, first) if s.name.startswith("RunActivity")]

        # The provider answers the handoff over Kafka, carrying its trace context back.
        handoff_id, context = await asyncio.to_thread(handoff_trace_context, broker, rid)
        assert context, "the handoff carried no trace context"
        answer = new_event(
            "linkway.provider.response.v1",
            rid,
            {
                "handoff_id": handoff_id,
                "referral_id": rid,
                "provider_id": WALKS,
                "occurred_at": datetime.now(UTC),
                "decision": "accept",
            },
            f"urn:linkway:provider:{WALKS}",
        )
        # The provider continues the handoff's trace, as a partner using OpenTelemetry
        # does: its producer's span (instrumented here too) injects the context.
        telemetry.spans.clear()
        producer = KafkaProducer(bootstrap_servers=broker)
        token = otel_context.attach(propagate.extract({k: v.decode() for k, v in context}))
        try:
            producer.send(
                topics.PROVIDER_RESPONSES, answer.model_dump_json().encode(), key=rid.encode()
            ).get(timeout=30)
        finally:
            otel_context.detach(token)
        producer.close()

        def reached_provider_inbound(spans: list[ReadableSpan]) -> bool:
            # The consumer's span ends when its handler returns, after sending the signal;
            # the workflow then persists the handoff's acceptance in the same trace.
            trace = in_trace(spans, second)
            return bool(handled(trace, SpanKind.CONSUMER, topics.PROVIDER_RESPONSES)) and any(
                s.name.startswith("RunActivity") for s in trace
            )

        trace = in_trace(await spans_until(telemetry, reached_provider_inbound), second)
        assert handled(trace, SpanKind.CONSUMER, topics.PROVIDER_RESPONSES)
        assert any(s.name == "SignalWorkflow:provider_responded" for s in trace)
        assert any(s.name == f"RunActivity:{RECORD_TRANSITION}" for s in trace)

        # The provider reports a session over HTTP: the signal, the activity, the relay's
        # send and the payment consumer's handling of the lifecycle event, in its trace.
        telemetry.spans.clear()
        reported = await stack.http.post(
            f"/provider/handoffs/{handoff_id}/attendance",
            json={"session_date": date.today().isoformat(), "status": "attended"},
            headers=stack.auth(f"tier_two:{WALKS}"),
        )
        assert reported.status_code == 202, reported.text
        attended = server_span(
            list(telemetry.spans.get_finished_spans()),
            "POST /provider/handoffs/{handoff_id}/attendance",
        )
        assert attended.context is not None
        third = attended.context.trace_id
        # The client's address is not on a server span (infra.telemetry.scrub_server_span).
        seen = dict(attended.attributes or {})
        assert not any(seen.get(k) for k in ("net.peer.ip", "client.address")), seen

        def reached_lifecycle(spans: list[ReadableSpan]) -> bool:
            return bool(handled(in_trace(spans, third), SpanKind.CONSUMER, topics.REFERRALS))

        trace = in_trace(await spans_until(telemetry, reached_lifecycle), third)
        names = {s.name for s in trace}
        assert {"SignalWorkflow:attendance_reported", f"RunActivity:{RECORD_TRANSITION}"} <= names
        assert handled(trace, SpanKind.PRODUCER, topics.REFERRALS), sorted(names)
        assert handled(trace, SpanKind.CONSUMER, topics.REFERRALS), sorted(names)

        # Metrics, from the in-memory reader.
        deadline = time.monotonic() + 30
        while True:
            found = points(telemetry.metrics.get_metrics_data())
            claims = [a for a, v in found.get("linkway.claims", []) if a.get("metric") == "M1"]
            if claims or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)

    commands = {(a["command"], a["result"]): v for a, v in found["linkway.commands"]}
    assert commands[("agree_plan", "accepted")] >= 1, commands
    assert any(v for a, v in found["linkway.command.duration"] if a["command"] == "agree_plan")
    assert claims, found.get("linkway.claims")
    assert any(v > 0 for a, v in found["linkway.claims.pence"] if a["metric"] == "M1")
    assert any(a == {"stage": "supported"} or "stage" in a for a, _ in found["linkway.referrals"])
    assert "linkway.outbox.backlog" in found and "linkway.outbox.oldest_age" in found
    lag = {a["group"]: v for a, v in found.get("linkway.consumer.lag", [])}
    assert set(lag) >= {providers.GROUP_ID, payments.GROUP_ID}, lag
