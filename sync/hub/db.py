"""The hub's database: one URL (sqlite:///path, the embedded default, or
postgresql+psycopg://... in production), migrated with Alembic on start."""

from __future__ import annotations

import functools

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert
from sqlalchemy.exc import SQLAlchemyError

from sync.errors import HubError, HubRefused

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000
POOL_SIZE = 10
# pg_advisory_lock key of hub migrations ("loyalmg" in ASCII); not INGEST_LOCK_KEY
MIGRATION_LOCK_KEY = 0x6C6F79616C6D67


def create_hub_engine(url: str, *, reader: bool = False, **kwargs: Any) -> Engine:
    """reader: for long reads (verify) that must see one moment of the database and
    hold up no writer: on SQLite a deferred transaction (a WAL snapshot from its first
    read, without the write lock every other transaction takes at BEGIN), on
    PostgreSQL REPEATABLE READ."""
    try:
        if reader and not url.startswith("sqlite"):
            return create_engine(url, isolation_level="REPEATABLE READ", **kwargs)
        if url.startswith("sqlite"):
            engine = create_engine(url, **kwargs)

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                # the wait first: turning a new file to WAL takes a lock another process may hold
                cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = FULL")
                cur.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

            return engine
        return create_engine(url, pool_size=POOL_SIZE, pool_pre_ping=True, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise HubError(f"cannot use the hub database {url!r}: {exc}") from None


def dialect_insert(conn: Any, table: Any) -> Any:
    """INSERT with ON CONFLICT support, for the connection's database."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


@functools.lru_cache(maxsize=1)  # the installed code's scripts: they do not change while it runs
def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _at_head(engine: Engine) -> bool:
    """The database is already at the newest migration (alembic's environment, which
    loads every migration script, is not needed)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        at = MigrationContext.configure(conn).get_current_revision()
    return at is not None and at == head_revision()


def upgrade(engine: Engine) -> None:
    """Migrate to the newest schema, one process at a time: every `loyalty-hub`
    command does this first, and two started together on a new database both found
    it empty and both created the tables (one failed). PostgreSQL: a session advisory
    lock on a connection of its own, held around the whole upgrade. SQLite: the
    upgrade is one transaction begun IMMEDIATE (see migrations/env.py), which holds
    the file's write lock from reading the version to the commit."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    try:
        if _at_head(engine):  # every start but the first after an update: one read
            return
        if engine.dialect.name != "postgresql":
            command.upgrade(cfg, "head")
            return
        with engine.connect() as lock:
            lock.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            lock.commit()  # a session lock: it outlives this transaction, until unlocked
            try:
                command.upgrade(cfg, "head")
            finally:
                lock.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                lock.commit()
    except SQLAlchemyError as exc:
        raise HubError(f"the hub database could not be upgraded: {exc}") from None


def insert_new_rows(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """New rows (sales, their lines, message events) that the caller has checked are
    not stored yet: on PostgreSQL by COPY, a third of the time of an INSERT of as many
    rows (a sale's result JSON and lines travel with every entry since protocol 2). A
    clash (an id forged to be another terminal's) fails the batch as the INSERT's
    IntegrityError did."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    import psycopg

    columns = list(rows[0])
    cur = conn.connection.driver_connection.cursor()
    try:
        with cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise HubRefused(f"the database refused a value of the batch: {str(exc)[:200]}", 422,
                         "bad_payload") from None
