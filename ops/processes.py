"""Child processes for the embedded stack: each in its own process group so that one
signal reaches a child and everything it spawned, logs to a file, ports to wait on, and
nothing left running on any exit path (the atexit hook stops every live child).

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
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

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

    await_port(host, port, timeout, check, log_path)


def await_port(
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
