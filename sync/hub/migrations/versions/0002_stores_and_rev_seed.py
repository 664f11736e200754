"""stores table; the directory rev counter exists before the first change

The `counters` row 'rev' is the lock that orders directory changes (see
sync/hub/ordering.py); created lazily, two first changes at once would both try to
insert it. Stores were only a name on terminals and codes; they get a table of their
own, filled from those names.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stores',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_stores'))
    )
    op.execute("INSERT INTO stores (code, created_at) "
               "SELECT store, min(created_at) FROM ("
               "SELECT store, created_at FROM terminals UNION ALL "
               "SELECT store, created_at FROM enrolment_codes) AS known GROUP BY store")
    op.execute("INSERT INTO counters (name, value) SELECT 'rev', 0 "
               "WHERE NOT EXISTS (SELECT 1 FROM counters WHERE name = 'rev')")


def downgrade() -> None:
    op.drop_table('stores')
