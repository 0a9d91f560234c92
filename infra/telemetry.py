"""OpenTelemetry for every Linkway process: traces, metrics and logs, configured once.

``LINKWAY_TELEMETRY_EXPORTER`` picks where they go: ``none`` (the default), ``console``
(spans and metrics printed), or ``otlp`` (the collector, through the standard
``OTEL_EXPORTER_OTLP_*`` variables; traces, metrics and logs). Whatever the exporter,
logs are JSON lines carrying the trace and span ids, so a log line finds its trace.

Spans come from the maintained instrumentations (FastAPI, SQLAlchemy), from Temporal's
``TracingInterceptor`` (``infra.temporal``) from faststream's Kafka middleware (the
consumers) and from the kafka-python instrumentation (the relay's producer). Temporal's own runtime
metrics (task latencies, poll and slot usage) go to the same collector from the SDK's core.

Tests pass their own ``span_exporter`` and ``metric_reader`` (in-memory ones). The
providers are process-global and OpenTelemetry refuses to replace them, so ``setup``
acts once per process.

Personal data never reaches a span, a metric or a log: instrumentations record SQL with
placeholders (never bound values), and routes by template with no client address;
metric attributes are codes (command, stage, topic, reason category, metric id); log
messages name ids and codes.
``tests/integration/test_personal_data.py`` scans all three.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from infra.settings import Settings

EXPORTERS = ("none", "console", "otlp")
# Every Linkway meter and tracer is named under this prefix.
METER = "linkway"
# How often metrics are pushed to the collector. A minute is the usual alerting window;
# 15 s lets a dashboard show a backlog building within one refresh.
EXPORT_INTERVAL_MS = 15_000


@dataclass
class _State:
    configured: bool = False
    process: str = ""


_state = _State()


def setup(
    settings: Settings,
    process: str,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> bool:
    """Install the tracer, meter and logger providers for ``process`` (worker, relay, api,
    consume-providers, ...). Returns False when telemetry was already set up."""
    if _state.configured:
        return False
    if settings.telemetry_exporter not in EXPORTERS:
        raise ValueError("LINKWAY_TELEMETRY_EXPORTER must be none, console or otlp")
    _state.configured, _state.process = True, process
    resource = Resource.create(
        {"service.name": settings.service_name, "service.instance.role": process}
    )
    otlp = settings.telemetry_exporter == "otlp"

    tracer_provider = TracerProvider(resource=resource)
    if span_exporter is not None:
        # Tests read spans as soon as they end, not after a batch delay.
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    if settings.telemetry_exporter == "console":
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)

    readers: list[MetricReader] = [] if metric_reader is None else [metric_reader]
    if settings.telemetry_exporter == "console":
        readers.append(
            PeriodicExportingMetricReader(ConsoleMetricExporter(), EXPORT_INTERVAL_MS * 4)
        )
    elif otlp:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(), EXPORT_INTERVAL_MS))
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))

    if otlp:
        _export_logs(resource)
        _temporal_runtime_metrics(settings)
    _instrument_libraries()
    return True


def _export_logs(resource: Resource) -> None:
    """Send log records to the collector as well as to stderr (OTLP logs)."""
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    set_logger_provider(provider)
    logging.getLogger().addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))


def temporal_metrics_url(endpoint: str) -> str:
    """Temporal's core exports OTLP metrics itself; over HTTP it needs the full path."""
    return endpoint.rstrip("/") + "/v1/metrics"


def _temporal_runtime_metrics(settings: Settings) -> None:
    """Temporal's SDK measures its workers itself (workflow and activity task latency,
    schedule-to-start, slots): point its runtime at the collector. Must run before the
    first client connects, since a client keeps the runtime it was created with."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return
    from temporalio.runtime import OpenTelemetryConfig, Runtime, TelemetryConfig

    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=OpenTelemetryConfig(
                url=temporal_metrics_url(endpoint), http=True, durations_as_seconds=True
            ),
            global_tags={"service_name": settings.service_name},
        )
    )
    Runtime.set_default(runtime, error_if_already_set=False)


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # SQLAlchemy: one span per statement, with the SQL's placeholders, never its values.
    # It wraps engine creation, so it traces every engine infra.db makes after this call.
    # Its declared range stops below SQLAlchemy 2.1 (which sqlmodel now brings), in its
    # newest release and on its main branch alike, so its version check is skipped. Safe:
    # it hooks create_engine and the engine's and pool's events (before/after_cursor_execute,
    # handle_error, connect, close, checkin, checkout), all unchanged in 2.1. The unit tests
    # check those events exist and fail once a release declares our SQLAlchemy (then pin it
    # and drop the flag); the trace test checks that SQL spans appear.
    SQLAlchemyInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)
    # kafka-python (the relay's producer): a producer span per record, whose context goes
    # in the record's headers (messaging.relay.traced_send).
    KafkaInstrumentor().instrument()


# What the ASGI instrumentation records of the request's address (old and new semantic
# conventions): the raw path, with the ids a client put there, and the query string,
# which may carry anything (a search for a name, an NHS number in the wrong place).
_ADDRESS_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full")
_QUERY_ATTRIBUTES = ("url.query",)
# A path that matches no route: the client's text, which a span must not carry either.
UNMATCHED = "{unmatched}"
# Who called, by network address (old and new conventions, and the forwarded-for form
# some instrumentations record). The API's callers are partner systems, but also people:
# a link worker's or a provider administrator's browser, whose IP address is an online
# identifier (personal data under UK GDPR). A trace needs only the route and the partner;
# the reverse proxy's access log, under its own retention, is where addresses belong.
_CLIENT_ADDRESS_ATTRIBUTES = (
    "net.peer.ip",
    "client.address",
    "http.client_ip",
    "net.sock.peer.addr",
    "network.peer.address",
)
_CLIENT_PORT_ATTRIBUTES = (
    "net.peer.port",
    "client.port",
    "net.sock.peer.port",
    "network.peer.port",
)


def route_template(scope: dict[str, Any]) -> str:
    """The template of the route the request matches (``/referrals/{referral_id}``), or
    ``{unmatched}``: never the path the client sent."""
    from starlette.routing import Match

    app = scope.get("app")
    for route in getattr(app, "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", UNMATCHED))
    return UNMATCHED


def scrub_server_span(span: Any, scope: dict[str, Any]) -> None:
    """Replace the request's address on its server span by the route template, and
    blank the query string and the client's network address and port, before anything
    exports the span (the ASGI instrumentation calls this as the span starts; exporters
    read it when it ends). Attributes cannot be removed from a started span, so they are
    emptied, as the query string is."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    template = route_template(scope)
    for key in _ADDRESS_ATTRIBUTES:
        if key in attributes:
            value = template
            if key in ("http.url", "url.full"):
                host, port = scope.get("server") or ("server", 0)
                value = f"{scope.get('scheme', 'http')}://{host}:{port}{template}"
            span.set_attribute(key, value)
    for key in _QUERY_ATTRIBUTES + _CLIENT_ADDRESS_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")
    for key in _CLIENT_PORT_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, 0)


def instrument_app(app: Any, tracer_provider: Any = None) -> None:
    """FastAPI/ASGI server spans, named by route template (``/referrals/{referral_id}``)
    so no id reaches a span name, and with the request's path and URL replaced by that
    template, the query string dropped and the client's address blanked
    (``scrub_server_span``): a query string may carry anything, and an IP address may be
    a person's. Probes are left out: they would be most of the traces."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls="/health,/livez,/readyz",
        server_request_hook=scrub_server_span,
        tracer_provider=tracer_provider,  # the global one, unless a test brings its own
    )


# --- logs -----------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the process's role and the
    current trace and span ids. An exception is logged by type and code location only:
    an exception's message may quote the data that caused it."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if _state.process:
            line["process"] = _state.process
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(line)


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for every logger; called once by ``linkway`` at start."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
