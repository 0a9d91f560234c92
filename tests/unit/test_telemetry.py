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


async def test_server_spans_carry_the_route_template_never_the_path_or_query() -> None:
    """Whatever a client puts in the path or the query string (an NHS number, a name),
    the API's server spans carry the route's template and no query."""
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from infra.telemetry import instrument_app

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    app = FastAPI()

    @app.get("/referrals/{referral_id}/status")
    async def status(referral_id: str) -> dict[str, str]:
        return {"status": "open"}

    instrument_app(app, tracer_provider=provider)
    number, name = "".join(["401", "023", "2137"]), "Thistle" + "wood"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        found = await http.get(f"/referrals/{number}/status?name={name}&nhs={number}")
        assert found.status_code == 200
        missing = await http.get(f"/{name}/{number}?q={name}")
        assert missing.status_code == 404
    spans = exported.get_finished_spans()
    servers = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    assert len(servers) == 2
    matched, unmatched = (dict(s.attributes or {}) for s in servers)
    assert matched["http.target"] == "/referrals/{referral_id}/status"
    assert matched["http.url"].endswith("/referrals/{referral_id}/status")
    assert matched["http.route"] == "/referrals/{referral_id}/status"
    assert unmatched["http.target"] == "{unmatched}"
    for span in spans:
        seen = repr((span.name, dict(span.attributes or {}), [e.attributes for e in span.events]))
        assert number not in seen and name not in seen, seen


async def test_server_spans_carry_no_client_address_or_port() -> None:
    """An API caller may be a person's browser (a link worker, a provider administrator),
    and an IP address is an online identifier: the server span keeps neither the
    client's address nor its port, under the old or the new conventions' names."""
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from infra.telemetry import instrument_app, scrub_server_span

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    app = FastAPI()

    @app.get("/referrals/{referral_id}")
    async def one(referral_id: str) -> dict[str, str]:
        return {"status": "open"}

    instrument_app(app, tracer_provider=provider)
    address, port = "203.0.113.7", 51234
    transport = httpx.ASGITransport(app=app, client=(address, port))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        assert (await http.get("/referrals/r-1")).status_code == 200
    (server,) = [s for s in exported.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    seen = dict(server.attributes or {})
    assert address not in repr(seen) and port not in seen.values(), seen
    assert seen["http.route"] == "/referrals/{referral_id}"  # the span is still useful

    # Whichever convention the instrumentation was set to (OTEL_SEMCONV_STABILITY_OPT_IN):
    # the new names, and the forwarded-for form, are blanked too.
    every = {
        "net.peer.ip": address,
        "client.address": address,
        "http.client_ip": address,
        "network.peer.address": address,
        "net.sock.peer.addr": address,
        "net.peer.port": port,
        "client.port": port,
        "network.peer.port": port,
        "net.sock.peer.port": port,
        "server.address": "api.test",
    }
    with provider.get_tracer("test").start_as_current_span("s", attributes=every) as span:
        scrub_server_span(span, {"type": "http", "path": "/", "client": (address, port)})
        left = dict(span.attributes or {})  # type: ignore[attr-defined]
    assert address not in repr(left) and port not in left.values(), left
    assert left["server.address"] == "api.test"


# What opentelemetry-instrumentation-sqlalchemy listens to on each engine (and its pool).
HOOKED_EVENTS = (
    "before_cursor_execute",
    "after_cursor_execute",
    "handle_error",
    "connect",
    "close",
    "checkin",
    "checkout",
)


def test_the_sqlalchemy_instrumentation_skips_its_version_check_only_while_it_must() -> None:
    """opentelemetry-instrumentation-sqlalchemy (newest release and upstream main alike)
    declares support below SQLAlchemy 2.1, which sqlmodel brings, so infra.telemetry
    instruments it with skip_dep_check. That is safe because what it hooks is unchanged
    in 2.1 (checked here; the trace test checks SQL spans appear). When a release declares
    our SQLAlchemy, this fails: pin that release and drop the flag."""
    from importlib.metadata import version

    from opentelemetry.instrumentation.sqlalchemy.package import _instruments
    from packaging.requirements import Requirement
    from sqlalchemy import create_engine, event, text

    declared = Requirement(_instruments[0])
    assert declared.name == "sqlalchemy"
    installed = version("sqlalchemy")
    assert not declared.specifier.contains(installed), (
        f"the instrumentation now declares SQLAlchemy {installed}: drop skip_dep_check"
    )
    # The events it listens to on an engine: an unknown name would raise here.
    engine = create_engine("sqlite://")
    heard: list[str] = []
    for name in HOOKED_EVENTS:
        event.listen(engine, name, lambda *_, name=name, **__: heard.append(name))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert {"connect", "checkout", "before_cursor_execute", "after_cursor_execute"} <= set(heard)
