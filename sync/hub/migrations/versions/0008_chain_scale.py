"""chain scale: sales and their lines reach the hub; a store's scope of members, each
terminal's part of balances and gift cards, bonus uses by terminal and members' tiers,
so a terminal is told sums for its scope instead of every branch's entries

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TIME = sa.String(length=27)


def upgrade() -> None:
    op.create_table('sales',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('original_sale_id', sa.String(length=36), nullable=True),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('card_number', sa.String(length=32), nullable=True),
    sa.Column('receipt_ref', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('ruleset_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', TIME, nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('result_json', sa.Text(), nullable=False),
    sa.Column('received_at', TIME, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales'))
    )
    op.create_index('ix_sales_created_at', 'sales', ['created_at'])
    op.create_index('ix_sales_member_id', 'sales', ['member_id', 'created_at'])
    op.create_index('ix_sales_store', 'sales', ['store', 'created_at'])
    op.create_table('sale_lines',
    sa.Column('sale_id', sa.String(length=36), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('original_line_no', sa.Integer(), nullable=True),
    sa.Column('created_at', TIME, nullable=False),
    sa.PrimaryKeyConstraint('sale_id', 'line_no', name=op.f('pk_sale_lines'))
    )
    op.create_index('ix_sale_lines_created_at', 'sale_lines', ['created_at'])
    op.create_table('member_stores',
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=False),
    sa.Column('since', TIME, nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'store', name=op.f('pk_member_stores'))
    )
    op.create_index('ix_member_stores_store', 'member_stores', ['store', 'member_id'])
    op.create_table('terminal_balances',
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'terminal_code', name=op.f('pk_terminal_balances'))
    )
    op.create_table('rule_uses',
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('rule_id', sa.String(length=64), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('uses', sa.BigInteger(), nullable=False),
    sa.Column('last_used_at', TIME, nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'rule_id', 'terminal_code', name=op.f('pk_rule_uses'))
    )
    op.create_table('gift_balances',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('number', 'terminal_code', name=op.f('pk_gift_balances'))
    )
    op.create_table('member_tiers',
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('tier', sa.String(length=32), nullable=False),
    sa.Column('changed_at', TIME, nullable=False),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_member_tiers'))
    )
    # what the hub already holds, summed the same way: a hub upgraded with history
    # answers its terminals as if it had kept these all along
    op.execute("INSERT INTO terminal_balances (member_id, terminal_code, points) "
               "SELECT member_id, terminal_code, sum(points) FROM entries WHERE member_id IS NOT NULL "
               "GROUP BY member_id, terminal_code")
    op.execute("INSERT INTO rule_uses (member_id, rule_id, terminal_code, uses, last_used_at) "
               "SELECT member_id, rule_id, terminal_code, count(*), max(created_at) FROM entries "
               "WHERE kind = 'bonus' AND rule_id IS NOT NULL AND member_id IS NOT NULL "
               "GROUP BY member_id, rule_id, terminal_code")
    op.execute("INSERT INTO gift_balances (number, terminal_code, amount) "
               "SELECT gift_card_number, terminal_code, sum(amount) FROM entries "
               "WHERE gift_card_number IS NOT NULL AND kind IN ('gift_load', 'gift_spend') "
               "GROUP BY gift_card_number, terminal_code")
    op.execute("INSERT INTO member_stores (member_id, store, since) "
               "SELECT id, store_code, enrolled_at FROM members")
    op.execute("INSERT INTO member_stores (member_id, store, since) "
               "SELECT e.member_id, t.store, min(e.created_at) FROM entries e JOIN terminals t ON t.id = e.terminal_code "
               "WHERE e.member_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM member_stores s "
               "WHERE s.member_id = e.member_id AND s.store = t.store) GROUP BY e.member_id, t.store")


def downgrade() -> None:
    for table in ('member_tiers', 'gift_balances', 'rule_uses', 'terminal_balances', 'member_stores',
                  'sale_lines', 'sales'):
        op.drop_table(table)
