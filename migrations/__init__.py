"""Linkway's database schema as Alembic migrations, one file per change under
``versions/``, applied in order by ``linkway migrate`` (``ops.schema``).

A migration is frozen once committed: it describes the schema as it was on the day it
was written, so it uses plain Alembic and SQLAlchemy operations and imports nothing of
Linkway (a model that changes later must not change what an old migration does). The
models are handed to Alembic only for autogenerate and for the test that checks that
the models and the migrations agree (``tests/unit/test_migrations.py``).
"""

from __future__ import annotations

from pathlib import Path

LOCATION = Path(__file__).parent
