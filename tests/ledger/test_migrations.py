from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ledger import db
from ledger.schema import metadata


def test_migrations_build_exactly_the_schema_module(tmp_path: Path) -> None:
    engine = db.create_ledger_engine(tmp_path / "l.sqlite3")
    assert db.upgrade(engine) == db.head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_pragmas_are_wal_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = db.create_ledger_engine(tmp_path / "l.sqlite3")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS_DEFAULT
    engine.dispose()


def test_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    engine = db.create_ledger_engine(tmp_path / "l.sqlite3")
    first = db.upgrade(engine)
    assert db.upgrade(engine) == first
    engine.dispose()
