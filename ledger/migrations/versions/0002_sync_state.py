"""sync state: the hub cursor, the directory watermark, last success and error

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
    op.create_table('sync_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hub_cursor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('directory_since', sa.String(length=27), server_default='', nullable=False),
    sa.Column('directory_rev', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('last_success_at', sa.String(length=27), nullable=True),
    sa.Column('last_attempt_at', sa.String(length=27), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('ruleset_hash', sa.String(length=64), nullable=True),
    sa.Column('ruleset_toml', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_state'))
    )


def downgrade() -> None:
    op.drop_table('sync_state')
