"""Imports every sqlmodel table module so ``create_tables`` creates them all."""

from api import idempotency  # noqa: F401
from directory import tables as directory_tables  # noqa: F401
from events import (
    consumer,  # noqa: F401
    outbox,  # noqa: F401
    timeline,  # noqa: F401
)
from infra import (
    personal_data,  # noqa: F401
    readmodel,  # noqa: F401
)
from payments import store  # noqa: F401
