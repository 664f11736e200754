"""covering indexes for a member's history: a sale's snapshot reads index entries only,
so a regular with years of visits costs the till a range scan, not a table walk

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # each new index begins with member_id, so it also serves what the dropped one did
    op.create_index('ix_sales_member_kind_time', 'sales', ['member_id', 'kind', 'created_at', 'amount'])
    op.drop_index('ix_sales_member_id', table_name='sales')
    op.create_index('ix_entries_member_time', 'entries', ['member_id', 'created_at', 'kind', 'points', 'rule_id'])
    op.create_index('ix_entries_member_rule', 'entries', ['member_id', 'kind', 'rule_id', 'created_at'])
    op.drop_index('ix_entries_member_created', table_name='entries')
    op.drop_index('ix_entries_member_id', table_name='entries')


def downgrade() -> None:
    op.create_index('ix_entries_member_id', 'entries', ['member_id'])
    op.create_index('ix_entries_member_created', 'entries', ['member_id', 'created_at'])
    op.drop_index('ix_entries_member_rule', table_name='entries')
    op.drop_index('ix_entries_member_time', table_name='entries')
    op.create_index('ix_sales_member_id', 'sales', ['member_id'])
    op.drop_index('ix_sales_member_kind_time', table_name='sales')
