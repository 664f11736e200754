"""Opening the SQLite ledger: pragmas, `BEGIN IMMEDIATE` writes, Alembic migrations.

One writer at a time: every transaction begins IMMEDIATE, so two processes never
both read a seq and then race to write it; the loser waits up to busy_timeout_ms.
"""

from __future__ import annotations

import functools

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from ledger.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
READ_ONLY_OPTION = "ledger_read_only"  # execution option of a connection that only reads
BUSY_TIMEOUT_MS_DEFAULT = 5000


def _install_pragmas(engine: Engine, busy_timeout_ms: int, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own
        # implicit BEGIN is DEFERRED, which lets two writers deadlock on upgrade).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys = ON")
        if not read_only:
            cur.execute("PRAGMA journal_mode = WAL")
            # Checkpoints (copying the WAL into the file, with an fsync) run off the till's
            # path in the daemon (Ledger.checkpoint); this bound only caps the WAL's size
            # when nothing else checkpoints, e.g. a long CLI run.
            cur.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # a read (READ_ONLY_OPTION) begins DEFERRED: under WAL it sees one snapshot and
        # never holds the write lock a till's sale waits for
        reading = read_only or conn.get_execution_options().get(READ_ONLY_OPTION, False)
        # on the driver's connection: through SQLAlchemy's statement machinery this one
        # statement cost a twentieth of a sale. Its errors (busy, locked) are sqlite3's
        # own then, which translate_db_errors turns into DatabaseError all the same
        conn.connection.driver_connection.execute("BEGIN" if reading else "BEGIN IMMEDIATE")  # type: ignore[union-attr]


def sqlite_url(path: Path, read_only: bool = False) -> str:
    if read_only:
        return f"sqlite+pysqlite:///file:{path.resolve()}?mode=ro&uri=true"
    return f"sqlite+pysqlite:///{path.resolve()}"


WAL_AUTOCHECKPOINT_PAGES = 16_384  # 64 MiB of 4 KiB pages


def create_ledger_engine(
    path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS_DEFAULT, read_only: bool = False
) -> Engine:
    """An engine on the ledger file (created if missing, unless read_only)."""
    path = Path(path)
    if read_only:
        if not path.exists():
            raise DatabaseError(f"ledger file {path} does not exist")
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder of {path}: {exc.strerror}") from None
    engine = create_engine(
        sqlite_url(path, read_only),
        poolclass=QueuePool,
        pool_size=2,
        max_overflow=2,
        connect_args={"check_same_thread": False},
    )
    _install_pragmas(engine, busy_timeout_ms, read_only)
    return engine


@contextmanager
def translate_db_errors(action: str) -> Iterator[None]:
    """sqlite3/SQLAlchemy errors that are the world's doing become our DatabaseError."""
    try:
        yield
    except OperationalError as exc:
        raise DatabaseError(f"{action}: {exc.orig}") from None
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{action}: {exc}") from None


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> str | None:
    """Bring the schema to the newest migration; returns the revision it is at."""
    from alembic import command

    with translate_db_errors("database upgrade failed"):
        at = current_revision(engine)
        # at head (every start but the first after an update): one read, not alembic's
        # environment, which loads every migration script again on each open
        if at is not None and at == head_revision():
            return at
        command.upgrade(_alembic_config(engine), "head")
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@functools.lru_cache(maxsize=1)  # the scripts are the installed code's: they do not change while it runs
def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()  # type: ignore[arg-type]


def has_schema(engine: Engine) -> bool:
    try:
        return inspect(engine).has_table("alembic_version")
    except SQLAlchemyError as exc:  # pragma: no cover - a file that is not a database
        raise DatabaseError(f"cannot read the ledger: {exc}") from None


class Raw:
    """Plain sqlite3 statements on the connection of an open SQLAlchemy transaction.

    The till's hot path (a sale: about fifteen statements) spends more time in
    SQLAlchemy's statement and result machinery than in SQLite; these run the same
    SQL in the same transaction without it. Errors are sqlite3's, which
    `translate_db_errors` turns into DatabaseError like SQLAlchemy's.
    """

    __slots__ = ("_cur",)

    def __init__(self, conn: Any) -> None:
        self._cur = conn.connection.driver_connection.cursor()

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self._cur.execute(sql, params)

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._cur.executemany(sql, rows)

    def one_or_none(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        row = self._cur.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        row = self.one_or_none(sql, params)
        if row is None:
            raise DatabaseError(f"expected one row from: {sql.split()[0]} ... ; found none")
        return row

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.one(sql, params)[0]

    def column(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return [r[0] for r in self._cur.execute(sql, params).fetchall()]

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._cur.execute(sql, params).fetchall()]
