"""pre-printed card stock: the cards head office assigned to this store, and whether
the chain issues cards only from it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('card_stock',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('batch', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('issued_at', sa.String(length=27), nullable=True),
    sa.Column('issued_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint("status IN ('in_stock', 'issued')", name=op.f('ck_card_stock_status')),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_card_stock'))
    )
    with op.batch_alter_table('sync_state') as batch_op:
        batch_op.add_column(sa.Column('card_stock_required', sa.Boolean(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('sync_state') as batch_op:
        batch_op.drop_column('card_stock_required')
    op.drop_table('card_stock')
