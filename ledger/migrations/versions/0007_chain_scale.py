"""a ledger that stays bounded at chain scale: sales go up to the hub through the
outbox; what other branches did is kept as each member's (and gift card's) points
elsewhere and offer uses elsewhere, not as their entries; cards blocked or replaced
anywhere are kept in a blocklist even when their member is not held here; members
not seen here are marked stale until the hub confirms them; own entries and sales
past the retention are archived behind a checkpoint, their sums kept

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', recreate='always') as batch_op:
        batch_op.drop_constraint('kind', type_='check')
        batch_op.create_check_constraint('kind', "kind IN ('entry', 'member', 'card', 'gift_card', 'sale')")
    with op.batch_alter_table('balances') as batch_op:
        batch_op.add_column(sa.Column('elsewhere', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('archived_credit', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('archived_debit', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('gift_cards') as batch_op:
        batch_op.add_column(sa.Column('elsewhere', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('archived', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('members') as batch_op:
        batch_op.add_column(sa.Column('stale', sa.Boolean(), nullable=False, server_default='0'))
    with op.batch_alter_table('sync_state') as batch_op:
        batch_op.add_column(sa.Column('protocol', sa.Integer(), nullable=False, server_default='1'))
    op.create_table('member_rule_uses',
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('rule_id', sa.String(length=64), nullable=False),
    sa.Column('elsewhere', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('archived', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('last_used_at', sa.String(length=27), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_rule_uses_member_id_members')),
    sa.PrimaryKeyConstraint('member_id', 'rule_id', name=op.f('pk_member_rule_uses'))
    )
    op.create_table('blocklist',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('replaced_by', sa.String(length=32), nullable=True),
    sa.Column('changed_at', sa.String(length=27), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_blocklist'))
    )
    op.create_table('checkpoints',
    sa.Column('terminal_code', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.String(length=27), nullable=False),
    sa.PrimaryKeyConstraint('terminal_code', name=op.f('pk_checkpoints'))
    )
    op.create_table('member_stats',
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('sales', sa.BigInteger(), nullable=False, server_default='0'),
    sa.Column('spend', sa.BigInteger(), nullable=False, server_default='0'),
    sa.Column('gross', sa.BigInteger(), nullable=False, server_default='0'),
    sa.Column('first_visit_at', sa.String(length=27), nullable=True),
    sa.Column('last_visit_at', sa.String(length=27), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_stats_member_id_members')),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_member_stats'))
    )
    # a ledger that never held another terminal's entries speaks the chain protocol at once
    op.execute("UPDATE sync_state SET protocol = 2 WHERE NOT EXISTS (SELECT 1 FROM entries "
               "WHERE terminal_code NOT IN (SELECT code FROM terminals))")


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE kind = 'sale'")
    op.drop_table('member_stats')
    op.drop_table('checkpoints')
    op.drop_table('blocklist')
    op.drop_table('member_rule_uses')
    with op.batch_alter_table('sync_state') as batch_op:
        batch_op.drop_column('protocol')
    with op.batch_alter_table('members') as batch_op:
        batch_op.drop_column('stale')
    with op.batch_alter_table('gift_cards') as batch_op:
        batch_op.drop_column('archived')
        batch_op.drop_column('elsewhere')
    with op.batch_alter_table('balances') as batch_op:
        batch_op.drop_column('archived_debit')
        batch_op.drop_column('archived_credit')
        batch_op.drop_column('elsewhere')
    with op.batch_alter_table('outbox', recreate='always') as batch_op:
        batch_op.drop_constraint('kind', type_='check')
        batch_op.create_check_constraint('kind', "kind IN ('entry', 'member', 'card', 'gift_card')")
