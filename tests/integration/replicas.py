"""Linkway processes as replicas in a test: each a real ``linkway`` command (``python -m
ops.cli ...``) in its own process group, with its probes on a free port, so a test can
kill it (SIGKILL), pause it (SIGSTOP) and resume it (SIGCONT), and read its log."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from infra.health import probe
from ops.processes import ChildProcess
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


class Replica:
    """One Linkway process, e.g. ``Replica("relay-a", ["relay"], env, logs)``."""

    def __init__(
        self, name: str, command: list[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.command = command
        self.port = free_port()
        self._env = {
            **os.environ,
            **env,
            "LINKWAY_HEALTH_PORT": str(self.port),
            "LINKWAY_HEALTH_HOST": "127.0.0.1",
            # The checkout's packages, wherever the test runner stands.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        self._log_dir = log_dir
        self.child = self._start()

    def _start(self) -> ChildProcess:
        argv = [sys.executable, "-m", "ops.cli", *self.command]
        return ChildProcess(self.name, argv, self._log_dir, env=self._env)

    def readiness(self) -> tuple[int, dict[str, Any]]:
        try:
            return probe(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
        except OSError:
            return 0, {}

    def role(self) -> str | None:
        code, body = self.readiness()
        return body.get("role") if code == 200 else None

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            if not self.child.alive:
                raise AssertionError(f"{self.name} exited" + self.child.tail())
            code, body = self.readiness()
            return body if code == 200 else None

        return wait_until(ready, timeout, f"{self.name} to be ready")  # type: ignore[no-any-return]

    def log(self) -> str:
        return self.child.log_path.read_text(errors="replace")

    def pause(self) -> None:
        os.killpg(self.child.pgid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.child.pgid, signal.SIGCONT)

    def kill(self) -> None:
        os.killpg(self.child.pgid, signal.SIGKILL)
        self.child.stop(timeout=5)

    def restart(self) -> None:
        self.child.stop(timeout=5)
        self.child = self._start()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone (killed)
            self.resume()  # a paused process cannot act on SIGTERM
        self.child.stop(timeout=15)
