"""Liveness and readiness for a process that has no HTTP API of its own (the relay, the
worker, each consumer), on a small HTTP port (``LINKWAY_HEALTH_PORT``) that a container
platform probes:

- ``GET /livez``: 200 while the process's main loop keeps coming round (it calls
  ``beat``); 503 once it has not for ``live_within`` seconds. Restart it when this fails.
- ``GET /readyz``: 200 while the process can do its job (the process says so with
  ``ready``), and it is live; 503 otherwise. The body says what the process is doing: a
  standby relay is ready (``"role": "standby"``), not active.

Both answer JSON without a token: codes and roles only, never data. The server runs in a
daemon thread, so a process whose event loop is stuck still answers ``/livez`` with 503
rather than not at all.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("linkway.health")


class Health:
    """What a process says about itself; thread-safe."""

    def __init__(self, process: str, live_within: float = 120.0) -> None:
        self.process = process
        self.live_within = live_within
        self._lock = threading.Lock()
        self._beat = time.monotonic()
        self._ready = False
        self._detail: dict[str, Any] = {"reason": "starting"}

    def beat(self) -> None:
        with self._lock:
            self._beat = time.monotonic()

    def ready(self, ok: bool, **detail: Any) -> None:
        with self._lock:
            self._ready, self._detail = ok, dict(detail)

    def live(self) -> bool:
        with self._lock:
            return time.monotonic() - self._beat < self.live_within

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        live = self.live()
        with self._lock:
            ok = self._ready and live
            body = {
                "process": self.process,
                "status": "ok" if ok else "unavailable",
                **self._detail,
            }
        if not live:
            body["reason"] = "not live"
        return ok, body


def serve(health: Health, host: str, port: int) -> ThreadingHTTPServer | None:
    """Answer the probes on ``host:port`` in a daemon thread; nothing when port is 0."""
    if not port:
        return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/livez":
                ok = health.live()
                body: dict[str, Any] = {
                    "process": health.process,
                    "status": "ok" if ok else "unavailable",
                }
            elif self.path == "/readyz":
                ok, body = health.readiness()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a probe every few seconds is not worth a log line

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("health: probes on port %d (/livez, /readyz)", port)
    return server


def probe(url: str, timeout: float = 3.0) -> tuple[int, dict[str, Any]]:
    """GET a probe: its status code and JSON body (for ``linkway health`` and tests)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as refused:
        return int(refused.code), json.loads(refused.read() or b"{}")
