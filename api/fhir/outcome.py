"""Errors on the FHIR facade as FHIR ``OperationOutcome`` (``application/fhir+json``),
the same errors the rest of the API answers as problem+json: same statuses, same words,
never a value from the request. A field error names the field as a FHIRPath-like
``expression`` (``ServiceRequest.locationCode``), so a partner's developer sees which
element of the resource was wrong."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue

from api.fhir import FHIR_JSON, PREFIX

# HTTP status -> the FHIR issue type (https://hl7.org/fhir/R4/valueset-issue-type.html).
ISSUE_TYPE = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


def is_fhir(instance: str) -> bool:
    return instance == PREFIX or instance.startswith(PREFIX + "/")


def outcome(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    kind = ISSUE_TYPE.get(status, "exception" if status >= 500 else "processing")
    issues = [
        OperationOutcomeIssue(
            severity="error",
            code=kind,
            diagnostics=e["message"],
            expression=[e["field"]],
        )
        for e in errors or []
    ] or [
        OperationOutcomeIssue(
            severity="fatal" if status >= 500 else "error",
            code=kind,
            details=CodeableConcept(text=title),
            diagnostics=detail,
        )
    ]
    body = OperationOutcome(issue=issues).model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=dict(headers or {}))
