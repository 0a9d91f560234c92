"""The database refuses to change the payment engine's history: ``GUARDED`` tables are
insert-only (triggers on SQLite and PostgreSQL), installed when ``create_tables`` creates
them (``listen``, called by ``payments.store`` once its tables are defined) and
re-installable on an existing database (``install_append_only_guards``, idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import event, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

GUARDED = ("ledger_entries", "outcome_events", "ledger_checkpoints")
LOCK_TABLE, LOCK_NAME = "ledger_lock", "ledger"  # the one row that serialises appends

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION linkway_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING
    MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' is not allowed',
    ERRCODE = 'insufficient_privilege';
END $$
"""


def guard_statements(dialect: str, tables: Iterable[str] = GUARDED) -> list[str]:
    """The DDL that makes ``tables`` insert-only on this dialect (idempotent)."""
    if dialect == "postgresql":
        ddl = [_PG_FUNCTION]
        for table in tables:
            for name, timing in (("rows", "UPDATE OR DELETE"), ("truncate", "TRUNCATE")):
                level = "ROW" if name == "rows" else "STATEMENT"
                trigger = f"{table}_append_only_{name}"
                ddl += [
                    f"DROP TRIGGER IF EXISTS {trigger} ON {table}",
                    f"CREATE TRIGGER {trigger} BEFORE {timing} ON {table} "
                    f"FOR EACH {level} EXECUTE FUNCTION linkway_append_only()",
                ]
        return ddl
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} is not allowed'); END"
            for table in tables
            for op in ("UPDATE", "DELETE")
        ]
    raise NotImplementedError(f"no append-only guard for {dialect}; use SQLite or PostgreSQL")


def install_append_only_guards(engine: Engine) -> None:
    """Install (or re-install) the triggers on an existing database."""
    with engine.begin() as conn:
        _install(conn, GUARDED)
        _ensure_lock_row(conn)


def _install(conn: Connection, tables: Iterable[str]) -> None:
    for statement in guard_statements(conn.dialect.name, tables):
        conn.exec_driver_sql(statement)


def _ensure_lock_row(conn: Connection) -> None:
    table = SQLModel.metadata.tables[LOCK_TABLE]
    if conn.execute(select(table.c.name).where(table.c.name == LOCK_NAME)).first() is None:
        conn.execute(table.insert().values(name=LOCK_NAME, appends=0))


def listen() -> None:
    """``create_tables`` (``create_all``) installs the guards and the lock row with the
    tables; called once, after the tables are in ``SQLModel.metadata``."""
    for name in GUARDED:
        event.listen(
            SQLModel.metadata.tables[name],
            "after_create",
            lambda table, conn, **_: _install(conn, [table.name]),
        )
    event.listen(
        SQLModel.metadata.tables[LOCK_TABLE],
        "after_create",
        lambda _table, conn, **_: _ensure_lock_row(conn),
    )
