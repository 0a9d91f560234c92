"""The table registry: importing every sqlmodel table module registers it on
``SQLModel.metadata``, so ``create_tables`` creates them all. It lives here, above every
package that owns a table, so that no owner has to import another."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from activities import readmodel  # noqa: F401
from api import idempotency, personal_data  # noqa: F401
from directory import tables as directory_tables  # noqa: F401
from messaging import consumer, outbox, timeline  # noqa: F401
from payments import store  # noqa: F401


def create_tables(engine: Engine) -> None:
    """Create every table Linkway owns that is missing (existing ones are left as they are)."""
    SQLModel.metadata.create_all(engine)
