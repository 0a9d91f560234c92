"""The OpenAPI document says what the routes demand: generated clients and fuzzers read
it, so an operation that needs a token but declares no security looks open to them, and
a POST that needs an Idempotency-Key but does not declare one is sent without it.

Whether an operation needs a token is asked of the app itself: a request without one
answers 401. (No lifespan runs here, so an open operation fails later, never with 401.)
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from api.app import create_app

APP = create_app()
DOCUMENT: dict[str, Any] = APP.openapi()
OPERATIONS = sorted(
    (f"{method.upper()} {path}", op)
    for path, item in DOCUMENT["paths"].items()
    for method, op in item.items()
)
BEARER = {
    name
    for name, scheme in DOCUMENT["components"].get("securitySchemes", {}).items()
    if scheme.get("scheme") == "bearer"
}
# POSTs that are idempotent by what they say, so they need no key: a provider's report is
# the same fact however often it is sent (its event id is derived from its content,
# docs/providers.md), and a directory import creates or replaces by HSDS id. docs/api.md
# names the same routes.
IDEMPOTENT_BY_CONTENT = {
    "POST /directory/import",
    "POST /provider/attendance",
    "POST /provider/handoffs/{handoff_id}/accept",
    "POST /provider/handoffs/{handoff_id}/attendance",
    "POST /provider/handoffs/{handoff_id}/complete",
    "POST /provider/handoffs/{handoff_id}/reject",
    "POST /provider/handoffs/{handoff_id}/start",
    "POST /provider/handoffs/{handoff_id}/waitlist",
}


async def needs_token(label: str) -> bool:
    method, path = label.split(" ", 1)
    transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://linkway") as client:
        answer = await client.request(method, re.sub(r"\{\w+\}", "x", path))
    return answer.status_code == 401


async def test_every_payment_operation_needs_a_token() -> None:
    """So the next test holds the payment engine's operations to declaring it."""
    payment = [label for label, _ in OPERATIONS if " /payments" in label]
    assert payment and all([await needs_token(label) for label in payment])


@pytest.mark.parametrize(("label", "op"), OPERATIONS, ids=[label for label, _ in OPERATIONS])
async def test_every_operation_that_needs_a_token_declares_bearer_security(
    label: str, op: dict[str, Any]
) -> None:
    if await needs_token(label):
        declared = op.get("security", [])
        assert any(set(requirement) & BEARER for requirement in declared), label


POSTS = [(label, op) for label, op in OPERATIONS if label.startswith("POST ")]


@pytest.mark.parametrize(
    ("label", "op"),
    [(label, op) for label, op in POSTS if label not in IDEMPOTENT_BY_CONTENT],
    ids=[label for label, _ in POSTS if label not in IDEMPOTENT_BY_CONTENT],
)
def test_every_post_declares_a_required_idempotency_key(label: str, op: dict[str, Any]) -> None:
    keys = [
        p
        for p in op.get("parameters", [])
        if p["in"] == "header" and p["name"] == "Idempotency-Key"
    ]
    assert keys and keys[0]["required"], f"{label} declares no Idempotency-Key"


def test_the_routes_exempt_from_keys_exist() -> None:
    """A renamed route must not leave a stale exemption behind."""
    assert {label for label, _ in POSTS} >= IDEMPOTENT_BY_CONTENT


PATH_PARAMETERS = [
    (f"{label} {p['name']}", p)
    for label, op in OPERATIONS
    for p in op.get("parameters", [])
    if p["in"] == "path"
]


@pytest.mark.parametrize(
    ("label", "parameter"), PATH_PARAMETERS, ids=[x for x, _ in PATH_PARAMETERS]
)
def test_every_path_id_declares_the_shared_id_pattern(
    label: str, parameter: dict[str, Any]
) -> None:
    """A path id without the pattern reaches the database with whatever it was sent (a
    NUL is an error in PostgreSQL, not a miss): each must be ``api.params.IdPath`` or a
    narrower type of its own (a claim id, one of a closed list of names)."""
    schema = parameter["schema"]
    closed = "enum" in schema or re.fullmatch(r"\^\([\w|]+\)\$", schema.get("pattern", ""))
    assert closed or (schema.get("pattern") and schema.get("maxLength")), label
