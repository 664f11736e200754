"""The hub's database: one URL (sqlite:///path, the embedded default, or
postgresql+psycopg://... in production), migrated with Alembic on start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from sync.errors import HubError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000
POOL_SIZE = 10


def create_hub_engine(url: str, **kwargs: Any) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, **kwargs)

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = FULL")
                cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                cur.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        return create_engine(url, pool_size=POOL_SIZE, pool_pre_ping=True, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise HubError(f"cannot use the hub database {url!r}: {exc}") from None


def dialect_insert(conn: Any, table: Any) -> Any:
    """INSERT with ON CONFLICT support, for the connection's database."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    try:
        command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise HubError(f"the hub database could not be upgraded: {exc}") from None
