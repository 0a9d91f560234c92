"""``Idempotency-Key`` for creating requests.

Every POST needs one. Keys belong to the caller (partner and subject). Same key and same
request: the original response. Same key, different request (body or path): 422. The
same key while the first request is still running: 409 with Retry-After. A request that
failed part-way keeps its reserved id, so the client's retry resumes it instead of
creating a second one: every creating path is written to converge when run again with
the same reserved id, wherever the first run stopped.

A running request holds its key under a lease of ``LEASE``, renewed every
``RENEW_EVERY`` while it runs. A process that dies stops renewing, so its key is free
to a retry within one lease, not after a fixed stale-request window. Each holder has a
token (kept in ``body`` while the key is pending, where the answer goes once done):
taking a key over and renewing it are compare-and-set on that token, so two retries
cannot both take over a dead holder's key, and a holder that lost its lease (a long
pause) learns it at its next renewal and leaves the key to the new holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import CursorResult, Update, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col

from api.problems import Problem
from infra.db import transaction

log = logging.getLogger("linkway.api")

PENDING, DONE, FAILED = "pending", "done", "failed"
# Short, so a crashed holder's key is free within seconds; renewed three times per lease,
# so a live holder keeps it through a slow database write or two.
LEASE = timedelta(seconds=6)
RENEW_EVERY = LEASE / 3
# A route's own checks, run in the reservation's transaction before the key is looked at.
Check = Callable[[Session], None]


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    caller: str = Field(primary_key=True, max_length=160)
    key: str = Field(primary_key=True, max_length=128)
    request_hash: str = Field(max_length=64)
    state: str = Field(max_length=8)
    reserved_id: str = Field(max_length=64)
    status_code: int | None = None
    # The answer once done; while pending, the current holder's token.
    body: str | None = None
    # When the current holder took the key or last renewed its lease.
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def fingerprint(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None) -> str:
    if not key:
        raise Problem(400, "Idempotency-Key required", "send an Idempotency-Key header")
    if len(key) > 128 or not key.isprintable():
        raise Problem(400, "Bad Idempotency-Key", "an Idempotency-Key is 1-128 printable chars")
    return key


class IdempotencyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def begin(
        self,
        caller: str,
        key: str,
        request_hash: str,
        new_id: str,
        check: Check | None = None,
    ) -> IdempotencyRecord:
        """Reserve the key, or take it over from a holder that failed or whose lease ran
        out. Returns the record: DONE means replay its response; otherwise the caller
        holds the key, under the token in ``body``, and must ``renew`` it while it runs.

        ``check`` runs first, in the reservation's own transaction (one round trip for
        both): whatever it raises answers before any key is reserved."""
        token = uuid.uuid4().hex
        try:
            with transaction(self.engine) as session:
                if check is not None:
                    check(session)
                record = IdempotencyRecord(
                    caller=caller,
                    key=key,
                    request_hash=request_hash,
                    state=PENDING,
                    reserved_id=new_id,
                    body=token,
                )
                session.add(record)
            return record
        except IntegrityError:
            pass
        with Session(self.engine) as session:
            existing = session.get(IdempotencyRecord, (caller, key))
        assert existing is not None
        if existing.request_hash != request_hash:
            raise Problem(
                422,
                "Idempotency-Key reused",
                "this Idempotency-Key was used with a different request body",
            )
        if existing.state == DONE:
            return existing
        now = datetime.now(UTC)
        # Compare-and-set on the holder token we read: of two retries that saw the same
        # dead holder, one takes the key and the other is told it is in progress.
        seen = existing.body
        with transaction(self.engine) as session:
            taken = _changed(
                session,
                update(IdempotencyRecord)
                .where(
                    col(IdempotencyRecord.caller) == caller,
                    col(IdempotencyRecord.key) == key,
                    or_(
                        col(IdempotencyRecord.state) == FAILED,
                        (col(IdempotencyRecord.state) == PENDING)
                        & (col(IdempotencyRecord.created_at) < now - LEASE),
                    ),
                    col(IdempotencyRecord.body).is_(None)
                    if seen is None
                    else col(IdempotencyRecord.body) == seen,
                )
                .values(state=PENDING, body=token, created_at=now),
            )
        if taken != 1:
            raise Problem(
                409,
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry later",
                headers={"Retry-After": "1"},
            )
        existing.state, existing.body, existing.created_at = PENDING, token, now
        return existing

    def renew(self, caller: str, key: str, token: str) -> bool:
        """Extend the holder's lease; False when the key is no longer this holder's."""
        with transaction(self.engine) as session:
            renewed = _changed(
                session,
                update(IdempotencyRecord)
                .where(
                    col(IdempotencyRecord.caller) == caller,
                    col(IdempotencyRecord.key) == key,
                    col(IdempotencyRecord.state) == PENDING,
                    col(IdempotencyRecord.body) == token,
                )
                .values(created_at=datetime.now(UTC)),
            )
        return renewed == 1

    def finish(self, caller: str, key: str, status_code: int, body: str) -> None:
        # Whichever holder gets here stores the answer: a holder that lost its lease ran
        # the same request with the same reserved id, so its answer is as good.
        with transaction(self.engine) as session:
            session.execute(
                update(IdempotencyRecord)
                .where(col(IdempotencyRecord.caller) == caller, col(IdempotencyRecord.key) == key)
                .values(state=DONE, status_code=status_code, body=body)
            )

    def fail(self, caller: str, key: str, token: str) -> None:
        """Free the key for a retry now, unless another holder has taken it since."""
        with transaction(self.engine) as session:
            session.execute(
                update(IdempotencyRecord)
                .where(
                    col(IdempotencyRecord.caller) == caller,
                    col(IdempotencyRecord.key) == key,
                    col(IdempotencyRecord.state) == PENDING,
                    col(IdempotencyRecord.body) == token,
                )
                .values(state=FAILED, status_code=None, body=None)
            )


def _changed(session: Session, statement: Update) -> int:
    """How many rows an UPDATE changed (what makes it a compare-and-set)."""
    return cast(CursorResult, session.execute(statement)).rowcount


async def _keep_leased(store: IdempotencyStore, caller: str, key: str, token: str) -> None:
    while True:
        await asyncio.sleep(RENEW_EVERY.total_seconds())
        try:
            held = await asyncio.to_thread(store.renew, caller, key, token)
        except SQLAlchemyError:
            # The database is away: try again next time; if it stays away the lease
            # runs out and a retry may take over, which the reserved id makes safe.
            log.warning("idempotency: a lease renewal failed")
            continue
        if not held:
            return  # another holder took over; it answers from here


async def once(
    store: IdempotencyStore,
    caller: str,
    key: str | None,
    request: object,
    run: Callable[[str], Awaitable[tuple[int, BaseModel]]],
    check: Check | None = None,
) -> JSONResponse:
    """Run a creating request at most once per (caller, key).

    ``request`` is what identifies it (method, path and body); ``run`` gets the id
    reserved for whatever it creates and returns the status and body to answer with.
    ``run`` must converge when called again with the same id after stopping anywhere
    (a crash leaves no chance to undo): that is what a retry does.

    ``check`` (blocking, given a session) runs before the key is even looked at, in the
    reservation's transaction: the route's own refusals (a referral out of scope is a
    404) answer first, as they would before any idempotency work, and reserve nothing.

    The database work runs off the event loop, in two thread hops per request: the
    check with the reservation, and storing the answer.
    """
    request_hash = fingerprint(request)

    def reserve() -> IdempotencyRecord:
        if check is None:
            checked = check_key(key)
            return store.begin(caller, checked, request_hash, uuid.uuid4().hex)

        def check_then_key(session: Session) -> None:
            check(session)
            check_key(key)

        return store.begin(caller, key or "", request_hash, uuid.uuid4().hex, check_then_key)

    record = await asyncio.to_thread(reserve)
    held = record.key
    if record.state == DONE:
        return JSONResponse(json.loads(record.body or "{}"), status_code=record.status_code or 200)
    token = record.body or ""
    lease = asyncio.create_task(_keep_leased(store, caller, held, token))
    try:
        status, body = await run(record.reserved_id)
    except BaseException:
        # In a thread of its own: it completes even if this task is cancelled again.
        await asyncio.to_thread(store.fail, caller, held, token)
        raise
    finally:
        lease.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lease
    payload = body.model_dump(mode="json")
    await asyncio.to_thread(store.finish, caller, held, status, json.dumps(payload))
    return JSONResponse(payload, status_code=status)
