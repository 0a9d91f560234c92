"""RFC 9457 problem details for every error. Bodies never carry a stack trace or the
request's values (which may be personal data): only where and what is wrong."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=dict(headers or {}))


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, request.url.path, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return problem_response(
            422,
            "Invalid request",
            "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route matching the path; list every one.
            headers["Allow"] = ", ".join(sorted(_allowed(request)))
        return problem_response(
            exc.status_code, _phrase(exc.status_code), str(exc.detail), request.url.path, headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the type only: a message could quote personal data from the request.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return problem_response(
            500, "Internal error", "Linkway could not complete the request", request.url.path
        )


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
    400: "Idempotency-Key missing or malformed, or a body that is not JSON",
    401: "No valid bearer token (missing, expired, wrongly signed, wrong audience or issuer)",
    403: "The caller's role may not do this",
    404: "No such object, or not in the caller's scope (the two are indistinguishable)",
    409: "Conflict: the stage does not allow it, the version is stale, or the same "
    "Idempotency-Key is still being processed",
    413: "Request body too large",
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


def document(schema: dict[str, Any], problem_schema: dict[str, Any]) -> dict[str, Any]:
    """Make every 4xx/5xx in an OpenAPI document a problem+json response."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = dict(problem_schema)
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    for key in ("HTTPValidationError", "ValidationError"):
        components.pop(key, None)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                # A query parameter is absent or a string, never JSON null: say so.
                options = parameter.get("schema", {}).get("anyOf", [])
                if parameter["in"] == "query" and {"type": "null"} in options:
                    kept = [o for o in options if o != {"type": "null"}]
                    declared = parameter["schema"]
                    del declared["anyOf"]
                    declared.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
                if parameter["name"] == "Idempotency-Key":
                    # Optional to FastAPI only so that a missing key is our 400, not a 422.
                    parameter["required"] = True
                    parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 128}
            for code, answer in operation.get("responses", {}).items():
                if code.isdigit() and int(code) >= 400:
                    answer["content"] = {
                        PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
                    answer["description"] = MEANING.get(int(code), answer.get("description", ""))
                    if int(code) in HEADERS:
                        answer["headers"] = HEADERS[int(code)]
    return schema
