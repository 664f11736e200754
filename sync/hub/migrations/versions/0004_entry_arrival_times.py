"""when each entry arrived; entries with implausible times

`entries.received_at` is the hub's clock when an entry arrived (null for entries
that arrived before this migration). `entry_time_flags` lists entries written more
than SKEW_MAX_S after they arrived, or long before their terminal was enrolled, for
`loyalty-hub reconcile`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ALTER TABLE ADD COLUMN on both databases: the entries table is not copied
    op.add_column('entries', sa.Column('received_at', sa.String(length=27), nullable=True))
    op.create_table('entry_time_flags',
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.Column('received_at', sa.String(length=27), nullable=False),
    sa.Column('flag', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_entry_time_flags'))
    )


def downgrade() -> None:
    op.drop_table('entry_time_flags')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_column('received_at')
