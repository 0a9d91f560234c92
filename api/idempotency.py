"""``Idempotency-Key`` for creating requests.

Every POST needs one. Keys belong to the caller (partner and subject). Same key and same
request: the original response. Same key, different request (body or path): 422. The
same key while the first request is still running: 409 with Retry-After. A request that
failed part-way keeps its reserved id, so the client's retry resumes it instead of
creating a second one; a request left running by a process that died is resumed after
``STALE_AFTER``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from api.problems import Problem
from infra.db import transaction

PENDING, DONE, FAILED = "pending", "done", "failed"
STALE_AFTER = timedelta(minutes=2)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    caller: str = Field(primary_key=True, max_length=160)
    key: str = Field(primary_key=True, max_length=128)
    request_hash: str = Field(max_length=64)
    state: str = Field(max_length=8)
    reserved_id: str = Field(max_length=64)
    status_code: int | None = None
    body: str | None = None
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

    def begin(self, caller: str, key: str, request_hash: str, new_id: str) -> IdempotencyRecord:
        """Reserve the key. Returns the record: DONE means replay its response."""
        try:
            with transaction(self.engine) as session:
                record = IdempotencyRecord(
                    caller=caller,
                    key=key,
                    request_hash=request_hash,
                    state=PENDING,
                    reserved_id=new_id,
                )
                session.add(record)
            return record
        except IntegrityError:
            pass
        with transaction(self.engine) as session:
            existing = session.get(IdempotencyRecord, (caller, key))
            assert existing is not None
            if existing.request_hash != request_hash:
                raise Problem(
                    422,
                    "Idempotency-Key reused",
                    "this Idempotency-Key was used with a different request body",
                )
            started = existing.created_at
            if started.tzinfo is None:  # SQLite hands datetimes back naive (they are UTC)
                started = started.replace(tzinfo=UTC)
            if existing.state == PENDING and datetime.now(UTC) - started < STALE_AFTER:
                raise Problem(
                    409,
                    "Request in progress",
                    "a request with this Idempotency-Key is still being processed; retry later",
                    headers={"Retry-After": "1"},
                )
            if existing.state != DONE:
                existing.state, existing.created_at = PENDING, datetime.now(UTC)
                session.add(existing)
            return existing

    def finish(self, caller: str, key: str, status_code: int, body: str) -> None:
        self._set(caller, key, DONE, status_code, body)

    def fail(self, caller: str, key: str) -> None:
        self._set(caller, key, FAILED, None, None)

    def _set(self, caller: str, key: str, state: str, status: int | None, body: str | None) -> None:
        with Session(self.engine) as session:
            record = session.get(IdempotencyRecord, (caller, key))
            if record is None:
                return
            record.state, record.status_code, record.body = state, status, body
            session.add(record)
            session.commit()


async def once(
    store: IdempotencyStore,
    caller: str,
    key: str | None,
    request: object,
    run: Callable[[str], Awaitable[tuple[int, BaseModel]]],
) -> JSONResponse:
    """Run a creating request at most once per (caller, key).

    ``request`` is what identifies it (method, path and body); ``run`` gets the id
    reserved for whatever it creates and returns the status and body to answer with.
    """
    key = check_key(key)
    record = store.begin(caller, key, fingerprint(request), uuid.uuid4().hex)
    if record.state == DONE:
        return JSONResponse(json.loads(record.body or "{}"), status_code=record.status_code or 200)
    try:
        status, body = await run(record.reserved_id)
    except BaseException:
        store.fail(caller, key)
        raise
    payload = body.model_dump(mode="json")
    store.finish(caller, key, status, json.dumps(payload))
    return JSONResponse(payload, status_code=status)
