"""The database engine and sessions. SQLite in the embedded default, PostgreSQL in
production; the same sqlmodel tables on both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import sqlalchemy.engine
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from infra.settings import Settings, get_settings


def create_engine(url: str, **options: Any) -> Engine:
    # Looked up at call time, not imported: OpenTelemetry's SQLAlchemy instrumentation
    # (infra.telemetry) wraps sqlalchemy.engine.create_engine, and every engine made
    # after it did then traces its statements.
    return sqlalchemy.engine.create_engine(url, **options)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # Several processes share the file: WAL lets readers run beside the one writer,
        # and busy_timeout makes a writer wait for the lock instead of failing.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def clock_sql(dialect: str) -> str:
    """The database's own clock, in seconds since the epoch, as an SQL expression: for
    times several processes compare (leases, shared rate buckets), so that their hosts
    need no synchronised clocks."""
    if dialect == "postgresql":
        # clock_timestamp, not now(): now() is fixed at the start of the transaction.
        return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    return "((julianday('now') - 2440587.5) * 86400.0)"


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    if settings.sqlalchemy_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return engine_for(settings.sqlalchemy_url)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
