"""The worker's trace interceptor reads only a well-formed W3C trace context from a
Temporal header (workers.tracing): anything else is ignored, never a workflow failure."""

from __future__ import annotations

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadConverter

from workers.tracing import HEADER, carrier_from_headers

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def header(value: object) -> dict[str, Payload]:
    return {HEADER: PayloadConverter.default.to_payloads([value])[0]}


def test_the_trace_context_is_read_and_baggage_left_behind() -> None:
    found = carrier_from_headers(
        header({"traceparent": TRACEPARENT, "tracestate": "k=v", "baggage": "user=someone"})
    )
    assert found == {"traceparent": TRACEPARENT, "tracestate": "k=v"}


def test_no_header_or_a_malformed_one_gives_no_trace() -> None:
    assert carrier_from_headers({}) is None
    assert carrier_from_headers(header(["traceparent", TRACEPARENT])) is None
    assert carrier_from_headers(header({"tracestate": "k=v"})) is None
    assert carrier_from_headers(header({"traceparent": 7})) is None
    garbage = Payload(metadata={"encoding": b"json/plain"}, data=b"{not json")
    assert carrier_from_headers({HEADER: garbage}) is None
    assert carrier_from_headers({HEADER: Payload()}) is None
