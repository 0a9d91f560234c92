"""Telemetry plumbing without servers: JSON log lines carry the trace, exceptions are
logged by type and place only, Temporal's metrics URL, and the API's probes."""

from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from infra.telemetry import JsonFormatter, temporal_metrics_url


def record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("linkway.test", logging.WARNING, __file__, 1, message, (), info)


def test_a_log_line_written_inside_a_span_carries_its_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")  # a recording span, whatever is global
    with tracer.start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(record("relay: 3 events sent")))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["message"] == "relay: 3 events sent" and line["level"] == "WARNING"


def test_a_log_line_outside_a_span_has_no_trace_ids() -> None:
    assert trace.get_current_span().get_span_context().is_valid is False
    assert "trace_id" not in json.loads(JsonFormatter().format(record("idle")))


def test_an_exception_is_logged_by_type_and_place_never_by_its_message() -> None:
    number = "".join(["401", "023", "2137"])  # a value at run time, not in the source
    try:
        raise ValueError(f"nhs_number {number} is not valid")
    except ValueError as exc:
        line = json.loads(JsonFormatter().format(record("failed", exc)))
    assert line["exception"] == "ValueError"
    assert "4010232137" not in json.dumps(line)
    assert "test_telemetry.py" in line["stack"]


def test_temporal_core_gets_the_collectors_http_metrics_path() -> None:
    assert temporal_metrics_url("http://otel-collector:4318/") == (
        "http://otel-collector:4318/v1/metrics"
    )


def test_the_dashboard_charts_every_linkway_metric_the_docs_list() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "infra" / "dashboards" / "linkway.json").read_text())
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    documented = set(
        re.findall(
            r"^\| `(linkway\.[a-z_.]+)`",
            (root / "docs" / "production.md").read_text(),
            re.MULTILINE,
        )
    )
    assert len(documented) >= 10
    for name in documented:
        assert name.replace(".", "_") in queries, name
