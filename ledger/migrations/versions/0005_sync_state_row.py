"""the sync state's one row exists from the start, so reading it (`sync status`, the
API's status) never needs the write lock a running till holds between sales

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("INSERT INTO sync_state (id, hub_cursor, directory_since, directory_rev) "
               "SELECT 1, 0, '', 0 WHERE NOT EXISTS (SELECT 1 FROM sync_state WHERE id = 1)")


def downgrade() -> None:
    pass  # the row is harmless to an older schema, which creates it on first use anyway
