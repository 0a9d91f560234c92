"""Alembic's entry point, always called by ``ops.schema`` with an open connection.

There is no ``alembic.ini`` and no URL here: the connection (and, for autogenerate, the
models' metadata) come from ``config.attributes``, so the migrations run against exactly
the database Linkway's settings name, with Linkway's engine options.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import text
from sqlalchemy.types import TypeEngine

config = context.config
connection = config.attributes["connection"]

# PostgreSQL: two `linkway migrate` jobs started at once (two deploys, a retried job)
# would race on the same DDL; the second waits here for the first to finish, then finds
# nothing left to do. The lock is released when the transaction ends.
MIGRATION_LOCK = 7_215_364_201


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes sqlmodel's column types as plain SQLAlchemy ones, so a
    migration does not import sqlmodel and reads the same on SQLite and PostgreSQL."""
    if kind == "type" and isinstance(obj, TypeEngine):
        name = type(obj).__name__
        if name == "AutoString":
            length = getattr(obj, "length", None)
            return f"sa.String(length={length})" if length else "sa.String()"
        if name == "UTCDateTime":
            return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata"),
    render_item=render_item,
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=True,
    compare_type=True,
)

with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
    context.run_migrations()
