"""The database engine and sessions. SQLite in the embedded default, PostgreSQL in
production; the same sqlmodel tables on both."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

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
        # A file's pool holds as many connections as one process uses at once (the
        # worker's activity threads, the API's thread pool): one opened past the pool is
        # closed after use, and each new one runs the pragmas below again. (An in-memory
        # database is one connection per thread, unpooled.)
        in_memory = sqlalchemy.engine.make_url(url).database in (None, "", ":memory:")
        pool = {} if in_memory else {"pool_size": 10, "max_overflow": 20}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )

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


# Values per IN list: well under SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 500
V = TypeVar("V", str, int)


def chunks(values: Iterable[V], size: int = CHUNK) -> Iterator[list[V]]:
    """``values`` sorted and cut into lists of at most ``size``, for ``IN`` queries."""
    ordered = sorted(values)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


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


@contextmanager
def snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only session whose every query sees the database as it was at the first:
    for a read made of several queries that must agree with each other (reconciliation
    reads the events, then the ledger, while the payments consumer goes on writing).

    PostgreSQL's default (read committed) lets each statement see what committed since
    the last one, so the transaction is made repeatable read. SQLite's Python driver
    runs a SELECT outside any transaction, each one its own snapshot, so the session's
    connection begins one explicitly; with WAL, writers carry on meanwhile."""
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        elif engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN")
        try:
            yield session
        finally:
            session.rollback()  # it wrote nothing; this ends the snapshot
