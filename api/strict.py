"""Bodies are validated as JSON, strictly: ``"2026-05-01"`` is a date but ``0`` is not,
``true`` is a boolean but ``"yes"`` is not, ``2`` is an integer but ``"2"`` is not.

FastAPI validates a parsed body in pydantic's lax Python mode, which would take ``0`` for
1 January 1970. Routes call ``check_strictly`` first thing (after authentication and the
role check, so those answer first), which validates the raw JSON again in strict JSON
mode, where ISO 8601 strings are the only times, and answers 422 as FastAPI does.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError


async def check_strictly(request: Request, model: type[BaseModel]) -> None:
    try:
        model.model_validate_json(await request.body(), strict=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None
