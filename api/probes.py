"""Liveness and readiness for the API process, without a token (a load balancer and the
container platform call them).

- ``/livez``: the process answers; restart it when this fails.
- ``/readyz``: it can serve a request: its database and Temporal answer. A load balancer
  takes a replica out of rotation while this is 503, and puts it back when it is 200.

``/health`` (kept for existing probes) is liveness. The other processes have no HTTP
server; ``linkway status`` checks them (docs/production.md).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import deps

router = APIRouter(tags=["operations"])
# A probe must answer before the platform's own probe timeout (compose: 5 s).
CHECK_TIMEOUT_SECONDS = 3.0


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency does not answer"}})
async def readyz(request: Request) -> JSONResponse:
    d = deps(request)

    def database() -> None:
        with d.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    checks: dict[str, str] = {}
    for name, probe in (
        ("database", asyncio.to_thread(database)),
        ("temporal", d.client.service_client.check_health()),
    ):
        try:
            await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as exc:  # the type only: a driver's message may name hosts
            checks[name] = f"unavailable ({type(exc).__name__})"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, 200 if ready else 503
    )
