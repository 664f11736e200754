"""initial ledger schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.String(length=27), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_table('entries',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=True),
    sa.Column('card_number', sa.String(length=32), nullable=True),
    sa.Column('gift_card_number', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('sale_id', sa.String(length=36), nullable=True),
    sa.Column('receipt_ref', sa.String(length=64), nullable=True),
    sa.Column('rule_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('ruleset_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind IN ('earn', 'redeem', 'bonus', 'adjust', 'expire', 'reverse', 'gift_load', 'gift_spend', 'tier')", name=op.f('ck_entries_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entries')),
    sa.UniqueConstraint('terminal_code', 'seq', name='uq_entries_terminal_seq')
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entries_gift_card_number'), ['gift_card_number'], unique=False)
        batch_op.create_index('ix_entries_member_created', ['member_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_entries_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_entries_sale_id'), ['sale_id'], unique=False)

    op.create_table('gift_cards',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', sa.String(length=27), nullable=False),
    sa.Column('issued_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("status IN ('active', 'blocked')", name=op.f('ck_gift_cards_status')),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_gift_cards'))
    )
    op.create_table('members',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('mobile', sa.String(length=11), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('referrer_id', sa.String(length=36), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=False),
    sa.Column('segment', sa.String(length=32), nullable=True),
    sa.Column('enrolled_at', sa.String(length=27), nullable=False),
    sa.Column('enrolled_by', sa.String(length=64), nullable=False),
    sa.Column('store_code', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['referrer_id'], ['members.id'], name=op.f('fk_members_referrer_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('mobile', name=op.f('uq_members_mobile'))
    )
    op.create_table('stores',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_stores'))
    )
    op.create_table('tiers',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('name_en', sa.String(length=64), nullable=False),
    sa.Column('name_fa', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_tiers'))
    )
    op.create_table('users',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.String(length=27), nullable=True),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.CheckConstraint("role IN ('cashier', 'manager', 'admin')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_users'))
    )
    op.create_table('balances',
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_balances_member_id_members')),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_balances'))
    )
    op.create_table('cards',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('technology', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('replaced_by', sa.String(length=32), nullable=True),
    sa.Column('issued_at', sa.String(length=27), nullable=False),
    sa.Column('issued_by', sa.String(length=64), nullable=False),
    sa.Column('status_changed_at', sa.String(length=27), nullable=True),
    sa.Column('status_reason', sa.String(length=200), nullable=True),
    sa.CheckConstraint("status IN ('active', 'lost', 'replaced', 'blocked')", name=op.f('ck_cards_status')),
    sa.CheckConstraint("technology IN ('magstripe', 'contactless', 'smartcard', 'manual')", name=op.f('ck_cards_technology')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_cards_member_id_members')),
    sa.ForeignKeyConstraint(['replaced_by'], ['cards.number'], name=op.f('fk_cards_replaced_by_cards')),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_cards'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_member_id'), ['member_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_outbox_entry_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_outbox_entry_id'))
    )
    op.create_table('sales',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('original_sale_id', sa.String(length=36), nullable=True),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('card_number', sa.String(length=32), nullable=True),
    sa.Column('receipt_ref', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('ruleset_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('result_json', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('sale', 'refund')", name=op.f('ck_sales_kind')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_sales_member_id_members')),
    sa.ForeignKeyConstraint(['original_sale_id'], ['sales.id'], name=op.f('fk_sales_original_sale_id_sales')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sales_idempotency_key'))
    )
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_original_sale_id'), ['original_sale_id'], unique=False)

    op.create_table('terminals',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('store_code', sa.String(length=64), nullable=False),
    sa.Column('next_seq', sa.BigInteger(), server_default='1', nullable=False),
    sa.Column('last_hash', sa.String(length=64), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['store_code'], ['stores.code'], name=op.f('fk_terminals_store_code_stores')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_terminals'))
    )
    op.create_table('sale_lines',
    sa.Column('sale_id', sa.String(length=36), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('original_line_no', sa.Integer(), nullable=True),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_sale_lines_quantity_positive')),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_sale_lines_unit_price_not_negative')),
    sa.ForeignKeyConstraint(['sale_id'], ['sales.id'], name=op.f('fk_sale_lines_sale_id_sales')),
    sa.PrimaryKeyConstraint('sale_id', 'line_no', name=op.f('pk_sale_lines'))
    )



def downgrade() -> None:

    op.drop_table('sale_lines')
    op.drop_table('terminals')
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_original_sale_id'))
        batch_op.drop_index(batch_op.f('ix_sales_member_id'))

    op.drop_table('sales')
    op.drop_table('outbox')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cards_member_id'))

    op.drop_table('cards')
    op.drop_table('balances')
    op.drop_table('users')
    op.drop_table('tiers')
    op.drop_table('stores')
    op.drop_table('members')
    op.drop_table('gift_cards')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entries_sale_id'))
        batch_op.drop_index(batch_op.f('ix_entries_member_id'))
        batch_op.drop_index('ix_entries_member_created')
        batch_op.drop_index(batch_op.f('ix_entries_gift_card_number'))

    op.drop_table('entries')
    op.drop_table('audit_log')

