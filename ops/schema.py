"""The database schema's version: upgrade it, check it, adopt a database made before
migrations, and write a new migration.

The migrations (``migrations/``) own the schema. ``linkway migrate`` (a one-shot job in
production, the first thing ``linkway dev`` does) upgrades to the newest revision; every
long-running process only checks that the schema is at that revision and refuses to
start otherwise (``require_current``): several replicas racing to alter one database at
start-up, or an old image migrating a database a newer one already upgraded, are both
worse than a clear message telling the operator to run ``linkway migrate``.

Errors: ``SchemaError`` is the base; ``SchemaNotCurrent`` (a process started against a
schema that is not at head), ``UnrecognisedDatabase`` (tables that no revision made).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection, Engine

import migrations

# The first revision is the schema ``create_all`` made before there were migrations, so a
# database made that way is adopted by stamping it at this revision.
BASELINE = "0001"
VERSION_TABLE = "alembic_version"


class SchemaError(RuntimeError):
    """The database's schema is not one this Linkway can use as it stands."""


class SchemaNotCurrent(SchemaError):
    pass


class UnrecognisedDatabase(SchemaError):
    pass


def config(connection: Connection | None = None, metadata: object | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations.LOCATION))
    cfg.attributes["connection"] = connection
    cfg.attributes["target_metadata"] = metadata
    return cfg


def head() -> str:
    heads = ScriptDirectory.from_config(config()).get_heads()
    if len(heads) != 1:
        # Two branches each added a migration: one must be re-parented onto the other
        # (edit its down_revision) before either can be deployed.
        raise SchemaError(f"the migrations have {len(heads)} heads ({', '.join(heads)}); want 1")
    return heads[0]


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> str:
    """Upgrade the database to ``revision`` (adopting a pre-migrations database first);
    returns a sentence saying what was done."""
    with engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        adopted = before is None and adopt_legacy(conn)
        if adopted:
            before = BASELINE
        command.upgrade(config(conn), revision)
        after = MigrationContext.configure(conn).get_current_revision()
    if adopted:
        said = f"adopted a database made before migrations: stamped it at {BASELINE}"
        return said if after == BASELINE else f"{said}, then upgraded it to {after}"
    if before == after:
        return f"the schema is at revision {after}; nothing to do"
    return f"upgraded the schema from revision {before or 'none'} to {after}"


def adopt_legacy(conn: Connection) -> bool:
    """A database made by ``create_all`` (before migrations) has Linkway's tables but no
    version table: if its tables and columns are exactly the baseline's, stamp it at the
    baseline so the later migrations apply; if it has some of them, refuse with the
    difference rather than guess. Returns whether it stamped."""
    found = _columns(conn)
    found.pop(VERSION_TABLE, None)
    if not found:
        return False  # an empty database: the migrations make everything
    expected = baseline_columns()
    if not set(found) & set(expected):
        return False  # someone else's tables only; ours go beside them
    missing = sorted(set(expected) - set(found))
    differing = sorted(t for t in set(expected) & set(found) if expected[t] != found[t])
    if missing or differing:
        raise UnrecognisedDatabase(
            "the database has some of Linkway's tables but no migration history, and they "
            f"are not the baseline schema (missing tables: {missing or 'none'}; tables with "
            f"other columns: {differing or 'none'}). Restore it from a backup, or move it "
            "aside and let `linkway migrate` make a new one."
        )
    command.stamp(config(conn), BASELINE)
    return True


def baseline_columns() -> dict[str, set[str]]:
    """Each table's column names at the baseline revision, read from a scratch SQLite
    database migrated to it (so this stays true however the models change later)."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'baseline.db'}")
        try:
            with engine.begin() as conn:
                command.upgrade(config(conn), BASELINE)
                columns = _columns(conn)
        finally:
            engine.dispose()
    columns.pop(VERSION_TABLE, None)
    return columns


def require_current(engine: Engine, process: str) -> None:
    """Refuse to run ``process`` on a schema that is not at head, saying what to do."""
    want = head()
    have = current(engine)
    if have == want:
        return
    if have is None:
        state = "has no Linkway schema yet (or one made before migrations)"
    else:
        state = f"is at revision {have}"
    raise SchemaNotCurrent(
        f"linkway {process}: refusing to start: the database {state}, and this version of "
        f"Linkway needs revision {want}. Run `linkway migrate` first (it upgrades the "
        "schema; in production it is the one-shot `migrate` job)."
    )


def new_revision(message: str, metadata: object) -> list[str]:
    """Write a migration for the difference between the models (``metadata``) and the
    schema at head, compared in a scratch SQLite database; returns the files written.
    Read and edit what it wrote: autogenerate sees tables, columns and indexes, not
    triggers, data or renames (a rename comes out as a drop and an add)."""
    with _scratch_at_head() as conn:
        cfg = config(conn, metadata)
        number = int(head().split("_", 1)[0]) + 1  # "0003" or "0003_relay_lease"
        scripts = command.revision(cfg, message, autogenerate=True, rev_id=f"{number:04d}")
    written = scripts if isinstance(scripts, list) else [scripts]
    return [script.path for script in written if script is not None]


@contextmanager
def _scratch_at_head() -> Iterator[Connection]:
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'head.db'}")
        try:
            with engine.begin() as conn:
                command.upgrade(config(conn), "head")
                yield conn
        finally:
            engine.dispose()


def _columns(conn: Connection) -> dict[str, set[str]]:
    inspector = inspect(conn)
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()}
