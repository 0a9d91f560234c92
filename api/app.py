"""The HTTP API: FastAPI app factory. OpenAPI is published at /openapi.json, docs at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import problems, referrals, tenancy
from infra import temporal
from infra.db import create_tables, get_engine
from infra.personal_data import PersonalDataStore, load_keys
from infra.settings import Settings, get_settings
from pathway import config as pathway_config


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = get_engine(settings)
        create_tables(engine)
        app.state.deps = referrals.Deps(
            client=await temporal.connect(settings),
            engine=engine,
            people=PersonalDataStore(engine, load_keys(settings)),
            tenancy=tenancy.load(settings.tenancy_file),
            config=pathway_config.load(settings.pathway_profile),
        )
        yield

    app = FastAPI(
        title="Linkway API",
        version="1",
        description="Social prescribing referral pathway: referrals, casework and outcomes.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(referrals.router)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
