"""Alembic environment of the hub: runs with the engine the hub hands it.

Every migration of a run commits together or not at all, on SQLite too (it runs DDL
in a transaction; Alembic assumes it cannot, so a failed run left the earlier
migrations in place). On SQLite that transaction begins IMMEDIATE (the engine's
`begin` hook), so a second process waits for the first one's commit before it reads
the version: sync.hub.db.upgrade relies on it to run one upgrade at a time.
"""

from __future__ import annotations

from alembic import context

from sync.hub.partitions import is_partition
from sync.hub.schema import metadata

config = context.config
engine = config.attributes["engine"]


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Month partitions of sales are made by the hub as months come (partitions.py):
    no migration knows them by name."""
    return not (type_ == "table" and is_partition(name))


with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, include_name=_include_name,
                      render_as_batch=connection.dialect.name == "sqlite", transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
