"""The migrations own the schema, on SQLite and on PostgreSQL (when
``LINKWAY_TEST_POSTGRES_URL`` names a server): they make what the models describe, a
database upgraded from the first revision with data in it ends identical to a fresh one,
the ledger stays append-only, a database made before migrations is adopted, and no
process starts on a schema that is not at head."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from infra.db import make_engine
from ops import cli, schema
from ops.tables import create_tables
from tests.databases import fresh_postgres_database, schema_of

ROOT = Path(__file__).resolve().parents[2]
GUARDED = ("ledger_entries", "outcome_events", "ledger_checkpoints")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database factory's first product; see ``other_empty_db`` for a second."""
    yield from _empty(request.param, tmp_path / "a.db", "migrations_a")


@pytest.fixture
def other_empty_db(empty_db: Engine, tmp_path: Path) -> Iterator[Engine]:
    yield from _empty(empty_db.dialect.name, tmp_path / "b.db", "migrations_b")


def _empty(dialect: str, path: Path, label: str) -> Iterator[Engine]:
    if dialect == "sqlite":
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    with fresh_postgres_database(label) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def test_the_migrations_have_one_head_and_it_is_numbered() -> None:
    assert schema.head().split("_", 1)[0].isdigit()  # "0003", or "0003_what_it_adds"


def test_the_migrations_make_exactly_what_the_models_describe(
    empty_db: Engine, other_empty_db: Engine
) -> None:
    # Fails when a model gains a table, column or index without a migration: write one
    # with `linkway migrate --new "what changed"`.
    schema.migrate(empty_db)
    with empty_db.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    assert diff == []
    # And the tests' fast path (create_tables) makes the same schema, triggers included.
    create_tables(other_empty_db)
    made, migrated = schema_of(other_empty_db), schema_of(empty_db)
    del migrated["tables"]["alembic_version"]
    assert made == migrated


def test_a_database_upgraded_from_the_first_migration_with_data_in_every_table_ends_identical_to_a_fresh_one(  # noqa: E501
    empty_db: Engine, other_empty_db: Engine
) -> None:
    upgraded, fresh = empty_db, other_empty_db
    schema.migrate(upgraded, schema.BASELINE)
    filled = _fill_every_table(upgraded)
    schema.migrate(upgraded)
    schema.migrate(fresh)
    assert schema_of(upgraded) == schema_of(fresh)
    assert schema.current(upgraded) == schema.current(fresh) == schema.head()
    assert _counts(upgraded, filled) == filled  # every row survived


def test_after_upgrade_the_ledger_refuses_update_and_delete(empty_db: Engine) -> None:
    schema.migrate(empty_db, schema.BASELINE)
    _fill_every_table(empty_db)
    schema.migrate(empty_db)
    for table in GUARDED:
        for statement in (f"UPDATE {table} SET seq = seq", f"DELETE FROM {table}"):
            with pytest.raises(DBAPIError, match="append-only"), empty_db.begin() as conn:
                conn.execute(text(statement))
    with empty_db.connect() as conn:
        lock = conn.execute(text("SELECT appends FROM ledger_lock WHERE name = 'ledger'"))
        assert lock.scalar_one() == 0  # the row every append locks is there


def test_a_database_made_by_create_all_is_adopted_at_the_baseline_and_keeps_its_data(
    empty_db: Engine,
) -> None:
    # What `linkway migrate` made before migrations: the baseline schema, no version table
    # (create_tables would make today's models, which later migrations have moved on).
    schema.migrate(empty_db, schema.BASELINE)
    with empty_db.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    filled = _fill_every_table(empty_db)
    said = schema.migrate(empty_db)
    assert "adopted" in said
    assert schema.current(empty_db) == schema.head()
    assert _counts(empty_db, filled) == filled
    schema.require_current(empty_db, "api")  # and the processes start on it
    assert "nothing to do" in schema.migrate(empty_db)


def test_a_database_with_only_some_of_linkways_tables_is_refused_with_the_difference(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'partial.db'}")
    SQLModel.metadata.tables["outbox"].create(engine)
    with pytest.raises(schema.UnrecognisedDatabase, match=r"missing tables: \[.*'referrals'"):
        schema.migrate(engine)
    assert schema.current(engine) is None  # nothing was stamped


def test_someone_elses_tables_are_left_alone_and_ours_made_beside_them(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE their_table (id INTEGER PRIMARY KEY)"))
    schema.migrate(engine)
    assert schema.current(engine) == schema.head()


def test_a_process_refuses_to_start_on_a_schema_not_at_head_and_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LINKWAY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LINKWAY_DATABASE_URL", raising=False)
    # Telemetry is process-wide and set once: these processes never really start, so they
    # must not take it from the session's in-memory readers (tests/conftest.py).
    monkeypatch.setattr("infra.telemetry.setup", lambda *args, **kwargs: False)
    cli.get_settings.cache_clear()
    try:
        for argv in (["api"], ["worker"], ["consume", "payments"], ["rebuild", "measures"]):
            assert cli.main(argv) == 2
            err = capsys.readouterr().err
            assert "refusing to start" in err and "linkway migrate" in err
        assert cli.main(["migrate"]) == 0
        assert f"to {schema.head()}" in capsys.readouterr().out
        assert cli.main(["migrate"]) == 0
        assert "nothing to do" in capsys.readouterr().out
    finally:
        cli.get_settings.cache_clear()


def test_the_migrations_ship_inside_the_package() -> None:
    # A fresh clone and the Docker image install the package, so the migrations must be
    # in it: the package itself, its version files and the revision template.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "migrations*" in project["packages"]["find"]["include"]
    assert set(project["package-data"]["migrations"]) >= {"script.py.mako", "versions/*.py"}


def _fill_every_table(engine: Engine) -> dict[str, int]:
    """One made-up row in every table as the schema stands (reflected, so it works at any
    revision); returns each table's row count."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if table.name != "alembic_version":
                conn.execute(table.insert().values(_row(table)))
    return _counts(engine, {t: 0 for t in metadata.tables if t != "alembic_version"})


def _row(table: Table) -> dict[str, Any]:
    # The same value in every string column, so each foreign key finds its row.
    values: dict[str, Any] = {}
    for column in table.columns:
        kind = column.type.python_type
        if kind is str:
            length = getattr(column.type, "length", None) or 8
            values[column.name] = "x"[:length]
        elif kind is bool:
            values[column.name] = True
        elif kind is int:
            values[column.name] = 1
        elif kind is float:
            values[column.name] = 1.5
        elif kind is bytes:
            values[column.name] = b"x"
        elif kind is datetime:
            values[column.name] = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        else:  # pragma: no cover - a new column type: teach the filler about it
            raise AssertionError(f"no sample value for {table.name}.{column.name}: {kind}")
    return values


def _counts(engine: Engine, tables: dict[str, int]) -> dict[str, int]:
    metadata = MetaData()
    metadata.reflect(engine, only=list(tables))
    with engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(metadata.tables[name])).scalar_one()
            for name in tables
        }


def test_two_cases_for_one_person_made_before_the_unique_index_keep_the_earliest_indexed(
    empty_db: Engine,
) -> None:
    """Migration 0009: where the create race already opened two cases for one person,
    the earliest keeps its blind index, the later one is un-indexed (and logged), and the
    index then refuses a third."""
    schema.migrate(empty_db, "0006")
    insert = text(
        "INSERT INTO personal_data (referral_id, partner_id, nhs_index, ciphertext, updated_at)"
        " VALUES (:id, :partner, :index, :blob, :at)"
    )
    rows = [
        ("r-later", "north", "same", datetime(2026, 2, 1, tzinfo=UTC)),
        ("r-first", "north", "same", datetime(2026, 1, 1, tzinfo=UTC)),
        ("r-south", "south", "same", datetime(2026, 1, 1, tzinfo=UTC)),
        ("r-none-1", "north", None, datetime(2026, 1, 1, tzinfo=UTC)),
        ("r-none-2", "north", None, datetime(2026, 1, 1, tzinfo=UTC)),
    ]
    with empty_db.begin() as conn:
        for rid, partner, index, at in rows:
            conn.execute(
                insert, {"id": rid, "partner": partner, "index": index, "blob": b"x", "at": at}
            )
    schema.migrate(empty_db)
    with empty_db.connect() as conn:
        indexed = dict(conn.execute(text("SELECT referral_id, nhs_index FROM personal_data")).all())
    assert indexed == {
        "r-first": "same",
        "r-later": None,
        "r-south": "same",  # another partner's case for the person is its own
        "r-none-1": None,
        "r-none-2": None,
    }
    with pytest.raises(DBAPIError), empty_db.begin() as conn:
        conn.execute(
            insert,
            {"id": "r-third", "partner": "north", "index": "same", "blob": b"x", "at": rows[0][3]},
        )
