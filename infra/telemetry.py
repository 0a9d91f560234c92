"""OpenTelemetry, configured in one place. No exporter by default; ``console`` prints
spans; ``otlp`` sends them to a collector (standard ``OTEL_EXPORTER_OTLP_*`` settings)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from infra.settings import Settings

_configured = False


def setup(settings: Settings, process: str) -> None:
    global _configured
    if _configured:
        return
    _configured = True
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": settings.service_name, "service.instance.role": process}
        )
    )
    if settings.telemetry_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif settings.telemetry_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif settings.telemetry_exporter != "none":
        raise ValueError("LINKWAY_TELEMETRY_EXPORTER must be none, console or otlp")
    trace.set_tracer_provider(provider)
