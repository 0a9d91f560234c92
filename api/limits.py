"""Request limits: a per-caller rate limit (token bucket) and a body size cap.

Where the buckets live is a setting. With ``LINKWAY_API_RATE_SHARED`` off (the embedded
default: one API process) they live in the process, and each API replica limits on its
own, so the effective limit would be the setting times the number of replicas. With it
on (compose, and any deployment of several API replicas) every replica spends from one
bucket per caller in the database (``SharedRateLimiter``): the limit holds however many
replicas run and however the load balancer spreads a caller's requests.

Bodies larger than the cap get 413 before any route runs, whether the client declared a
Content-Length or streamed them (``Transfer-Encoding: chunked``), and whether or not the
route reads its body.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response, route_template
from infra.db import clock_sql

log = logging.getLogger("linkway.api.limits")

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


class RateBucket(SQLModel, table=True):
    """One caller's shared token bucket; ``updated_at`` is on the database's clock."""

    __tablename__ = "rate_buckets"

    key: str = Field(primary_key=True, max_length=200)
    tokens: float
    updated_at: float


class SharedRateLimiter:
    """The token bucket of ``RateLimiter``, kept in the database so that every API replica
    spends from the same one. ``take`` is one short transaction: refill the caller's row
    for the time since it was last used (which locks it), then spend a token if there is
    one. When the database does not answer, the request is let through (it will meet the
    database again in its route) rather than refused for a reason not the caller's."""

    def __init__(self, engine: Engine, per_second: float, burst: int) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.engine, self.rate, self.burst = engine, per_second, float(burst)

    def take(self, key: str) -> float:
        try:
            return self._take(key)
        except IntegrityError:  # two replicas made the caller's first row at once
            return self._take(key)
        except Exception as exc:
            log.warning("rate limit: the shared buckets are unreadable (%s)", type(exc).__name__)
            return 0.0

    def _take(self, key: str) -> float:
        with self.engine.begin() as conn:
            now = clock_sql(conn.dialect.name)
            params = {"key": key, "rate": self.rate, "burst": self.burst}
            refilled = conn.execute(
                text(
                    "UPDATE rate_buckets SET tokens = CASE "
                    f"WHEN tokens + ({now} - updated_at) * :rate > :burst THEN :burst "
                    f"ELSE tokens + ({now} - updated_at) * :rate END, updated_at = {now} "
                    "WHERE key = :key"
                ),
                params,
            ).rowcount
            if refilled != 1:
                conn.execute(
                    text(
                        "INSERT INTO rate_buckets (key, tokens, updated_at) "
                        f"VALUES (:key, :burst - 1, {now})"
                    ),
                    params,
                )
                return 0.0
            spent = conn.execute(
                text(
                    "UPDATE rate_buckets SET tokens = tokens - 1 WHERE key = :key AND tokens >= 1"
                ),
                params,
            ).rowcount
            if spent == 1:
                return 0.0
            tokens = conn.execute(
                text("SELECT tokens FROM rate_buckets WHERE key = :key"), params
            ).scalar_one()
            return float((1 - tokens) / self.rate)


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
