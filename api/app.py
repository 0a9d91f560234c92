"""The HTTP API: FastAPI app factory. OpenAPI is published at /openapi.json, docs at /docs.

Every route but /health and the docs needs a bearer token (``api.auth``); every error is
problem+json (``api.problems``); bodies are capped and callers rate-limited
(``api.limits``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles

from api import (
    audit,
    caseload,
    commands,
    completion_report,
    directory,
    equality,
    fund,
    links,
    payments,
    people,
    probes,
    problems,
    providers,
    referrals,
    referrer,
    reporting,
    schemas,
    tenancy,
    worktime,
)
from api.auth import Authenticator
from api.dashboard import routes as dashboard
from api.deps import Deps
from api.fhir import facade
from api.limits import BodySizeLimit
from api.personal_data import PersonalDataStore, load_keys
from api.problems import Problem
from infra import telemetry, temporal
from infra.db import get_engine
from infra.settings import PaymentSettings, Settings, get_settings
from pathway import config as pathway_config
from payments.engine import PaymentEngine


def known_query_only(request: Request) -> None:
    """An unknown or repeated query parameter is a client's mistake (a mistyped filter
    would otherwise widen a list silently, a repeated one be half ignored): 422."""
    if not request.query_params:
        return
    app = request.app
    if getattr(app.state, "query_names", None) is None:
        # What each operation declares, from the OpenAPI document itself.
        app.state.query_names = {
            (path, method.upper()): {
                p["name"] for p in op.get("parameters", []) if p["in"] == "query"
            }
            for path, item in app.openapi()["paths"].items()
            for method, op in item.items()
        }
    path = getattr(request.scope.get("route"), "path", None)
    known = app.state.query_names.get((path, request.method))
    if known is not None and not set(request.query_params) <= known:
        raise Problem(422, "Invalid request", "unknown query parameter; see the OpenAPI document")
    if len(request.query_params.keys()) != len(request.query_params.multi_items()):
        raise Problem(422, "Invalid request", "a query parameter may be given only once")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = get_engine(settings)
        app.state.deps = Deps(
            client=await temporal.connect(settings),
            engine=engine,
            people=PersonalDataStore(engine, load_keys(settings)),
            tenancy=tenancy.load(settings.tenancy_file),
            config=pathway_config.load(settings.pathway_profile),
            payments=PaymentEngine.from_settings(engine, PaymentSettings(), settings.data_dir),
        )
        app.state.authenticator = Authenticator(settings)
        yield

    app = FastAPI(
        title="Linkway API",
        version="1",
        description=(
            "Social prescribing referral pathway: referrals, casework, caseloads and "
            "outcomes. Bearer JWTs with role and partner claims; errors are RFC 9457 "
            "problem+json. See docs/api.md."
        ),
        lifespan=lifespan,
        dependencies=[Depends(known_query_only)],
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    problems.install(app)
    modules = (referrals, commands, people, caseload, worktime, audit, providers, directory)
    for module in (*modules, payments, reporting):
        app.include_router(module.router)
    app.include_router(fund.router)
    app.include_router(equality.router)
    app.include_router(completion_report.router)
    app.include_router(referrer.router)
    app.include_router(facade.router)
    app.include_router(probes.router)
    app.include_router(dashboard.router)
    # The dashboard's script, stylesheet and vendored chart library: package data.
    app.mount("/dashboard/static", StaticFiles(directory=dashboard.STATIC), name="dashboard-static")
    telemetry.instrument_app(app)  # server spans: the root of every request's trace

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            problem = schemas.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = links.add_links(problems.document(schema, problem))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
