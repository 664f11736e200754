"""pre-printed card stock: batches of printed cards, each card at head office, assigned
to a store or issued, and cards issued outside their store's stock

New tables only: nothing of an existing hub changes.

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
    op.create_table('card_batches',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('cards', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('imported_at', sa.String(length=27), nullable=False),
    sa.Column('imported_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_card_batches'))
    )
    op.create_table('card_stock',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('batch', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=True),
    sa.Column('assigned_at', sa.String(length=27), nullable=True),
    sa.Column('assigned_by', sa.String(length=64), nullable=True),
    sa.Column('issued_at', sa.String(length=27), nullable=True),
    sa.Column('issued_terminal', sa.String(length=64), nullable=True),
    sa.Column('rev', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_card_stock'))
    )
    op.create_index('ix_card_stock_batch', 'card_stock', ['batch', 'status', 'number'], unique=False)
    op.create_index('ix_card_stock_store', 'card_stock', ['store', 'rev'], unique=False)
    op.create_table('card_stock_outside',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=True),
    sa.Column('why', sa.String(length=16), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.String(length=27), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_stock_outside'))
    )
    op.create_index(op.f('ix_card_stock_outside_number'), 'card_stock_outside', ['number'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_card_stock_outside_number'), table_name='card_stock_outside')
    op.drop_table('card_stock_outside')
    op.drop_index('ix_card_stock_store', table_name='card_stock')
    op.drop_index('ix_card_stock_batch', table_name='card_stock')
    op.drop_table('card_stock')
    op.drop_table('card_batches')
