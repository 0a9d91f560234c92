"""Scratch databases for tests: a fresh PostgreSQL database (created on the server at
``LINKWAY_TEST_POSTGRES_URL``, dropped afterwards) and a dump of any database's schema
that two databases can be compared by."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url

POSTGRES_URL_VARIABLE = "LINKWAY_TEST_POSTGRES_URL"


def postgres_server_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


def require_postgres() -> str:
    url = postgres_server_url()
    if url is None:
        pytest.skip(f"set {POSTGRES_URL_VARIABLE} to run the PostgreSQL checks (.ci/postgres.sh)")
    return url


@contextmanager
def fresh_postgres_database(label: str = "test") -> Iterator[str]:
    """A new, empty database on the test server; yields its URL and drops it after
    (``WITH (FORCE)``: a test that leaked a connection must not leak the database)."""
    with _postgres_database(label, "") as url:
        yield url


@contextmanager
def clone_postgres_database(template_url: str, label: str = "test") -> Iterator[str]:
    """A new database copied from ``template_url``'s (which nobody may be connected to)."""
    template = make_url(template_url).database
    with _postgres_database(label, f' TEMPLATE "{template}"') as url:
        yield url


@contextmanager
def _postgres_database(label: str, options: str) -> Iterator[str]:
    server = make_url(require_postgres())
    slug = "".join(c if c.isalnum() else "_" for c in label.lower())[:30]
    name = f"linkway_{slug}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{options}'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def schema_of(engine: Engine) -> dict[str, Any]:
    """Everything about a schema that migrations decide: tables, columns (type,
    nullability, default), keys, indexes, constraints and triggers."""
    inspector = inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"] or "", tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
        }
    return {"tables": tables, "triggers": triggers_of(engine)}


def triggers_of(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(
                text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
            )
        else:
            rows = conn.execute(
                # pg_trigger, not information_schema: the latter omits TRUNCATE triggers.
                text(
                    "SELECT c.relname, t.tgname FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
                )
            )
        return sorted((str(t), str(n)) for t, n in rows)
