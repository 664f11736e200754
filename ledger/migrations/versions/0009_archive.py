"""a terminal's ledger stays bounded: the checkpoint keeps the sums of what it archived
(so `ledger verify` checks them against the balances, gift cards, uses and member
stats), and an archived sale's idempotency key and receipt are kept a while longer,
so a POS retry or a refund of it is refused with the reason instead of posting again

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('checkpoints') as batch_op:
        batch_op.add_column(sa.Column('credit', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('debit', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('gift', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('uses', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('sales', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('spend', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('gross', sa.BigInteger(), nullable=False, server_default='0'))
    op.create_table('archived_sales',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('receipt_ref', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_archived_sales')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_archived_sales_idempotency_key'))
    )
    with op.batch_alter_table('archived_sales') as batch_op:
        batch_op.create_index(batch_op.f('ix_archived_sales_receipt_ref'), ['receipt_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_archived_sales_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    # going down forgets the archived keys and sums; the balances keep what was archived
    with op.batch_alter_table('archived_sales') as batch_op:
        batch_op.drop_index(batch_op.f('ix_archived_sales_created_at'))
        batch_op.drop_index(batch_op.f('ix_archived_sales_receipt_ref'))
    op.drop_table('archived_sales')
    with op.batch_alter_table('checkpoints') as batch_op:
        for name in ('gross', 'spend', 'sales', 'uses', 'gift', 'debit', 'credit'):
            batch_op.drop_column(name)
