"""The API stack most integration modules share: one ``ThreadedApi`` per module (on the
module's database: SQLite, or PostgreSQL for the second leg of a ``both_databases``
module) and an HTTP client per test. A module that needs other settings (a raised rate
limit, a database of its own) defines its own ``api`` fixture, which wins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import free_port, temporal_address
from tests.integration.stack import ThreadedApi


@pytest.fixture(scope="module")
def api(
    dev_env,
    tmp_path_factory: pytest.TempPathFactory,
    module_database_url: str | None,
    request: pytest.FixtureRequest,
) -> Iterator[ThreadedApi]:
    overrides = {"database_url": module_database_url} if module_database_url else {}
    name = request.module.__name__.rsplit(".", 1)[-1]
    with ThreadedApi(
        temporal_address(dev_env), tmp_path_factory.mktemp(name), free_port(), **overrides
    ) as running:
        yield running


@pytest.fixture
async def http(api: ThreadedApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
        yield client
