"""The embedded-default supervisor against the real Temporal dev server and Tansu."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from temporalio.client import Client, WorkflowExecutionStatus

from infra.settings import Settings
from ops.devstack import (
    ChildProcess,
    PortInUse,
    ensure_port_free,
    run_dev,
    start_broker,
    start_temporal,
    wait_for_port,
)

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


async def test_temporal_dev_server_keeps_running_workflows_across_a_restart(tmp_path: Path):
    port, ui_port, db = free_port(), free_port(), tmp_path / "temporal.db"
    workflow_id = f"devstack-{uuid.uuid4()}"

    server = start_temporal(HOST, port, ui_port, db, tmp_path / "logs", headless=True)
    try:
        client = await Client.connect(f"{HOST}:{port}")
        # No worker polls this queue: the workflow simply stays running.
        await client.start_workflow("NoSuchWorkflow", id=workflow_id, task_queue="devstack-test")
    finally:
        server.stop()
    assert not server.alive
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pgid, 0)

    server = start_temporal(HOST, port, ui_port, db, tmp_path / "logs", headless=True)
    try:
        client = await Client.connect(f"{HOST}:{port}")
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
    finally:
        server.stop()
    assert group_is_gone(server.pgid)


def test_broker_creates_and_lists_topics(tmp_path: Path):
    port = free_port()
    broker = start_broker(HOST, port, tmp_path)
    try:
        admin = KafkaAdminClient(bootstrap_servers=f"{HOST}:{port}", client_id="devstack-test")
        try:
            admin.create_topics([NewTopic("linkway.devstack.test", 1, 1)])
            assert "linkway.devstack.test" in admin.list_topics()
        finally:
            admin.close()
    finally:
        broker.stop()
    assert group_is_gone(broker.pgid)


def test_a_taken_port_is_reported_with_the_variable_that_moves_it():
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUse, match=rf"port {port}\b.*LINKWAY_API_PORT"):
            ensure_port_free(HOST, port, "HTTP API", "LINKWAY_API_PORT")
    ensure_port_free(HOST, port, "HTTP API", "LINKWAY_API_PORT")


IGNORES_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
STUBBORN_PARENT = (
    IGNORES_SIGTERM
    + "import subprocess, sys; "
    + "child = subprocess.Popen([sys.executable, '-c', sys.argv[1] + 'time.sleep(60)']); "
    + "open(sys.argv[2], 'w').write(str(child.pid)); time.sleep(60)"
)


def test_stop_kills_a_child_that_ignores_sigterm_and_its_grandchildren(tmp_path: Path):
    pid_file = tmp_path / "grandchild.pid"
    argv = [sys.executable, "-c", STUBBORN_PARENT, IGNORES_SIGTERM, str(pid_file)]
    child = ChildProcess("stubborn", argv, tmp_path)
    wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
    grandchild = int(pid_file.read_text())

    started = time.monotonic()
    child.stop(timeout=0.5)
    child.stop()  # idempotent

    assert time.monotonic() - started < 5
    assert not child.alive
    assert child.proc.returncode == -signal.SIGKILL
    assert group_is_gone(child.pgid)
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)


def test_wait_for_port_reports_a_child_that_exits_with_its_log(tmp_path: Path):
    child = ChildProcess(
        "doomed", [sys.executable, "-c", "print('cannot open the store'); exit(3)"], tmp_path
    )
    try:
        with pytest.raises(RuntimeError, match=r"(?s)code 3.*cannot open the store"):
            wait_for_port(HOST, free_port(), 10, child.proc, log_path=child.log_path)
    finally:
        child.stop()


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        temporal_address=f"{HOST}:{free_port()}",
        temporal_ui_port=free_port(),
        kafka_bootstrap=f"{HOST}:{free_port()}",
        api_host=HOST,
        api_port=free_port(),
    )


def _fake_api(port: int, then: str = "time.sleep(60)") -> list[str]:
    listen = f"import socket, time; s = socket.create_server(('{HOST}', {port})); "
    return [sys.executable, "-c", listen + then]


def test_run_dev_stops_everything_and_returns_0_on_sigint(tmp_path: Path, capsys):
    settings = _settings(tmp_path)
    services = [("worker", [sys.executable, "-c", "import time; time.sleep(60)"])]
    services.append(("api", _fake_api(settings.api_port)))

    def banner() -> str:
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        return "BANNER"

    code = run_dev(settings, services, lambda: None, banner)

    out = capsys.readouterr().out
    assert code == 0
    assert f"Temporal dev server ready on {settings.temporal_address}" in out
    assert "BANNER" in out
    assert (settings.data_dir / "temporal.db").exists()
    assert (settings.data_dir / "logs" / "api.log").exists()
    for port in (int(settings.temporal_address.rsplit(":", 1)[1]), settings.api_port):
        ensure_port_free(HOST, port, "test", "X")


def test_run_dev_reports_a_dying_service_and_returns_1(tmp_path: Path, capsys):
    settings = _settings(tmp_path)
    dying_api = _fake_api(settings.api_port, "time.sleep(0.5); print('api gave up'); exit(4)")

    code = run_dev(settings, [("api", dying_api)], lambda: None, lambda: "BANNER")

    err = capsys.readouterr().err
    assert code == 1
    assert "api exited unexpectedly with code 4" in err
    assert "api gave up" in err
    ensure_port_free(HOST, int(settings.kafka_bootstrap.rsplit(":", 1)[1]), "test", "X")


def test_run_dev_refuses_a_taken_port_with_exit_code_2(tmp_path: Path, capsys):
    settings = _settings(tmp_path)
    with socket.create_server((HOST, settings.api_port)):
        code = run_dev(settings, [], lambda: None, lambda: "BANNER")
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"port {settings.api_port}" in err and "LINKWAY_API_PORT" in err
