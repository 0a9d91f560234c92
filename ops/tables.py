"""The table registry: importing every sqlmodel table module registers it on
``SQLModel.metadata``, the models' description of the schema. It lives here, above every
package that owns a table, so that no owner has to import another.

The schema itself is made by the migrations (``migrations/``, run by ``linkway migrate``);
``metadata()`` is what autogenerate compares them with, and a test holds the two equal.
``create_tables`` remains as the tests' fast path to a schema at head."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from activities import readmodel  # noqa: F401
from api import idempotency, limits, personal_data  # noqa: F401
from directory import tables as directory_tables  # noqa: F401
from fund import tables as fund_tables  # noqa: F401
from inbound import distal_store  # noqa: F401
from messaging import consumer, lease, logmarks, outbox, timeline  # noqa: F401
from payments import event_store, store  # noqa: F401
from reporting import tables as reporting_tables  # noqa: F401


def metadata() -> MetaData:
    """Every table Linkway owns, as the models describe it."""
    return SQLModel.metadata


def create_tables(engine: Engine) -> None:
    """Tests only: create every table that is missing straight from the models (faster
    than migrating; ``test_migrations`` holds the two equal). A database for Linkway to
    run on is made by ``linkway migrate``, which records its revision."""
    SQLModel.metadata.create_all(engine)
