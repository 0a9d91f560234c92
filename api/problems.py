"""RFC 9457 problem details for every error. Bodies never carry a stack trace or the
request's values (which may be personal data): only where and what is wrong.

- ``instance`` is the route's template (``/referrals/{referral_id}/status``), never the
  path as sent: an NHS number put in a path would otherwise come back, and be logged.
- A validation error names the field and the rule, never the value.
- An unexpected error is answered 500 with a correlation id, and logged with that id and
  the exception's type only: an exception's message or traceback can quote SQL bound
  parameters, so neither is logged. ``CatchUnexpected`` answers it itself, so the server
  framework never sees (and re-logs, with its traceback) the exception.
- A value the database cannot take (``DataError``: a NUL, a number out of range) is the
  client's input that validation let through: 422, never 500.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from api.fhir import FHIR_JSON
from api.fhir.outcome import is_fhir, outcome
from api.personal_data import AuditFailed

log = logging.getLogger("linkway.api")
PROBLEM = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, headers: dict | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers


def problem_response(
    status: int,
    title: str,
    detail: str,
    instance: str = "",
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if is_fhir(instance):
        # The FHIR facade answers every error as an OperationOutcome (api.fhir.outcome).
        errors = extra.get("errors")
        return outcome(status, title, detail, errors if isinstance(errors, list) else None, headers)
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=dict(headers or {}))


def route_template(scope: Scope) -> str:
    """The template of the route a request is for (``/referrals/{referral_id}``), or ""
    when no route matches: never the path as sent."""
    route = scope.get("route")
    if route is None and scope.get("app") is not None:
        # Before routing (a middleware's answer): find the route the router would pick.
        for candidate in getattr(scope["app"], "routes", ()):
            if candidate.matches(scope)[0] == Match.FULL:
                route = candidate
                break
    return str(getattr(route, "path", "") or "")


# A location part that is a field name (or a list index) is shown; anything else there is
# a key the client chose (a dict key, an unknown field), which is shown as "*".
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(
        str(p) if isinstance(p, int) or _FIELD_NAME.fullmatch(str(p)) else "*" for p in loc
    )


def _message(error: Mapping[str, Any]) -> str:
    # Our own validators never quote a value; the email validator's messages can
    # ("invalid characters before the @-sign: ..."), so it gets the rule instead.
    if error.get("type") == "value_error" and str(error["loc"][-1]) == "email":
        return "must be an email address such as name@example.org"
    return str(error["msg"])


def install(app: FastAPI) -> None:
    app.add_middleware(CatchUnexpected)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, route_template(request.scope), headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e["loc"]), "message": _message(e)} for e in exc.errors()]
        return problem_response(
            422,
            "Invalid request",
            "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
            route_template(request.scope),
            errors=errors,
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        log.warning(
            "refused %s on %s %s",
            type(exc.orig).__name__,
            request.method,
            route_template(request.scope),
        )
        return problem_response(
            422,
            "Invalid request",
            "a value in the request cannot be stored; see the OpenAPI document for each field",
            route_template(request.scope),
        )

    @app.exception_handler(AuditFailed)
    async def _unaudited(request: Request, exc: AuditFailed) -> JSONResponse:
        return problem_response(
            503,
            "Audit unavailable",
            "personal data is not read or written without an audit record; retry later",
            route_template(request.scope),
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route matching the path; list every one.
            headers["Allow"] = ", ".join(sorted(_allowed(request)))
        return problem_response(
            exc.status_code,
            _phrase(exc.status_code),
            str(exc.detail),
            route_template(request.scope),
            headers,
        )


class CatchUnexpected:
    """ASGI middleware: any exception no handler answered becomes a 500 problem carrying a
    correlation id, logged with that id and the exception's type only. Answered here, not
    re-raised: Starlette's outermost middleware re-raises after its handler, and the server
    then logs the full traceback (with SQL bound parameters in it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            correlation_id = uuid.uuid4().hex
            log.error(
                "unexpected %s on %s %s (correlation id %s)",
                type(exc).__name__,
                scope.get("method", ""),
                route_template(scope) or "(no route)",
                correlation_id,
            )
            if started:
                return  # the answer is under way: all that is left is to end it
            response = problem_response(
                500,
                "Internal error",
                "Linkway could not complete the request; quote the correlation id",
                route_template(scope),
                correlation_id=correlation_id,
            )
            await response(scope, receive, send)


def _allowed(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# What each error status means on this API, for the OpenAPI document.
MEANING = {
    400: "Idempotency-Key missing or malformed, a body that is not JSON, or the purpose of "
    "a personal-data read not given",
    401: "No valid bearer token (missing, expired, wrongly signed, wrong audience or issuer)",
    403: "The caller's role may not do this",
    404: "No such object, or not in the caller's scope (the two are indistinguishable)",
    409: "Conflict: the stage does not allow it, the version is stale, or the same "
    "Idempotency-Key is still being processed",
    413: "Request body too large",
    415: "Unsupported media type: send the Content-Type the operation declares",
    422: "Invalid request, or Idempotency-Key reused with a different request",
    429: "Rate limit exceeded; see Retry-After",
    503: "A dependency (the pathway engine, the audit log) is unavailable; retry later",
}
HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}},
    429: {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}},
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` for a route: its error statuses (bodies filled in by document)."""
    return {code: {"description": MEANING[code]} for code in codes}


# What the facade's errors look like, for the OpenAPI document (the FHIR R4 resource,
# the elements Linkway fills in).
OPERATION_OUTCOME: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "details": {"type": "object"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

# Parameters optional to FastAPI only so that a missing one is our 400 with its own
# message, not a generic 422: the document declares them required, as they are.
REQUIRED = {"Idempotency-Key", "purpose"}


def document(schema: dict[str, Any], problem_schema: dict[str, Any]) -> dict[str, Any]:
    """Make every 4xx/5xx in an OpenAPI document a problem+json response."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = dict(problem_schema)
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    for key in ("HTTPValidationError", "ValidationError"):
        components.pop(key, None)
    components["OperationOutcome"] = OPERATION_OUTCOME
    for route, path in schema.get("paths", {}).items():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                # A query parameter is absent or a string, never JSON null: say so.
                options = parameter.get("schema", {}).get("anyOf", [])
                if parameter["in"] == "query" and {"type": "null"} in options:
                    kept = [o for o in options if o != {"type": "null"}]
                    declared = parameter["schema"]
                    del declared["anyOf"]
                    declared.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
                if parameter["name"] in REQUIRED:
                    parameter["required"] = True
                if parameter["name"] == "Idempotency-Key":
                    parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 128}
            for code, answer in operation.get("responses", {}).items():
                if code.isdigit() and int(code) >= 400:
                    answer["content"] = (
                        {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}
                        if is_fhir(route)
                        else {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
                    )
                    answer["description"] = MEANING.get(int(code), answer.get("description", ""))
                    if int(code) in HEADERS:
                        answer["headers"] = HEADERS[int(code)]
    return schema
