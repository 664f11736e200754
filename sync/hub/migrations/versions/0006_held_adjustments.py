"""manual adjustments held above a terminal's daily limit

Each terminal may get its own daily limit of manual adjustment points
(`loyalty-hub terminals limit`); `adjust_day` and `adjust_used` count what it made
that day. `held_adjustments` lists the adjustments above it, cancelled at once by
the hub's own chain until approved or rejected.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('terminals', sa.Column('adjust_points_per_day', sa.BigInteger(), nullable=True))
    op.add_column('terminals', sa.Column('adjust_day', sa.String(length=10), nullable=True))
    op.add_column('terminals', sa.Column('adjust_used', sa.BigInteger(), nullable=False, server_default='0'))
    op.create_table('held_adjustments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('held_at', sa.String(length=27), nullable=False),
    sa.Column('hold_entry_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.String(length=27), nullable=True),
    sa.Column('decision_reason', sa.String(length=200), nullable=True),
    sa.Column('release_entry_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_held_adjustments')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_held_adjustments_entry_id'))
    )
    with op.batch_alter_table('held_adjustments', schema=None) as batch_op:
        batch_op.create_index('ix_held_adjustments_status', ['status'], unique=False)


def downgrade() -> None:
    op.drop_table('held_adjustments')
    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.drop_column('adjust_used')
        batch_op.drop_column('adjust_day')
        batch_op.drop_column('adjust_points_per_day')
