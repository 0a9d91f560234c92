"""Request limits: a per-caller rate limit (token bucket) and a body size cap.

The token buckets live in this process: each API replica limits on its own, so the
effective limit is the setting times the number of replicas. Production that needs one
shared limit puts a gateway in front. Bodies larger than the cap get 413 before any
route runs, whether the client declared a Content-Length or streamed them
(``Transfer-Encoding: chunked``), and whether or not the route reads its body.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response, route_template

MAX_BUCKETS = 10_000


class RateLimiter:
    """``take(key)`` spends one token: 0.0 if there was one, else seconds until there is."""

    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate, self.burst, self.clock = per_second, float(burst), clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
            # Bounded memory: forget the longest-idle callers (their buckets are full).
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
            return wait


class BodySizeLimit:
    """ASGI middleware: a 413 problem for bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            # The server holds the body to its declared length, so checking the number
            # is enough, read or not.
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._reject(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        # No length declared (chunked): read the whole body now, up to the cap, and hand
        # the route what was read. Counting only what a route reads would let a route
        # that reads nothing (accept, approve...) take any size of body, and act on it.
        chunks: list[bytes] = []
        seen, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "Request too large",
            f"request bodies are limited to {self.max_bytes} bytes",
            route_template(scope),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
