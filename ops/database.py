"""What every ``linkway`` command that touches the database shares: an engine, once the
schema is at head, and the refusal (exit code 2, with what to do) when it is not."""

from __future__ import annotations

import sys

from sqlalchemy.engine import Engine

from infra.settings import Settings


def engine_at_head(settings: Settings, process: str) -> Engine:
    """The database, once its schema is at head (``ops.schema.require_current``)."""
    from infra.db import get_engine
    from ops import schema

    engine = get_engine(settings)
    schema.require_current(engine, process)
    return engine


def schema_is_current(settings: Settings, process: str) -> bool:
    """A long-running process checks the schema before it starts, and refuses to start
    (exit code 2) with what to do, rather than fail on its first query."""
    from ops import schema

    try:
        engine_at_head(settings, process)
    except schema.SchemaError as exc:
        print(str(exc), file=sys.stderr)
        return False
    return True
