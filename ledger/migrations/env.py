"""Alembic environment: runs with the engine the agent (or hub) hands it."""

from __future__ import annotations

from alembic import context

from ledger.errors import DatabaseError
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
        # SQLite runs DDL inside a transaction: every migration of a run commits together or not at all
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                          transactional_ddl=True)
        with context.begin_transaction():
            before = context.get_context().get_current_revision()
            context.run_migrations()
            # the whole-file check only when something was migrated: at head (every
            # start of the agent) it would read every sale on every start
            if sqlite and context.get_context().get_current_revision() != before:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise DatabaseError(f"the migration would leave {len(broken)} broken references, "
                                        f"first in table {broken[0][0]}; nothing was changed")
        connection.commit()
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
