"""Alembic environment: runs with the engine the agent (or hub) hands it."""

from __future__ import annotations

from alembic import context

from ledger.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # pragma: no cover - `alembic` command line use
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    # A batch migration rebuilds a table (create, copy, drop, rename), which SQLite
    # allows under foreign keys only with them off, and that pragma only takes effect
    # outside a transaction. Every reference is checked before the commit instead.
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
    try:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration would leave {len(broken)} broken references, "
                                       f"first in table {broken[0][0]}; nothing was changed")
        connection.commit()
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
