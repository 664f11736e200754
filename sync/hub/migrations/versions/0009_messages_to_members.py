"""messages to members

The message events the sync writes in its transaction, the queue of messages (one
per key) that workers claim with a lease, members' choices (opt-out, opt-in), delivery
reports and inbound replies, verification codes and confirmed mobiles, campaigns
with their control groups, gift card contacts and the daily jobs' last run.
New tables only: nothing of an existing hub changes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_members',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('control', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('campaign_id', 'member_id', name=op.f('pk_campaign_members'))
    )
    op.create_table('campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('segment', sa.String(length=32), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=True),
    sa.Column('store', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('due_at', sa.String(length=27), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('control_percent', sa.Integer(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('control', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_table('gift_card_contacts',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('mobile', sa.String(length=11), nullable=False),
    sa.Column('at', sa.String(length=27), nullable=False),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_gift_card_contacts'))
    )
    op.create_table('message_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('ref', sa.String(length=36), nullable=False),
    sa.Column('at', sa.String(length=27), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_events'))
    )
    op.create_table('message_jobs',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_day', sa.String(length=10), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_message_jobs'))
    )
    op.create_table('message_prefs',
    sa.Column('mobile', sa.String(length=11), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('choice', sa.String(length=4), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('at', sa.String(length=27), nullable=False),
    sa.PrimaryKeyConstraint('mobile', 'kind', name=op.f('pk_message_prefs'))
    )
    op.create_table('message_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('provider_id', sa.String(length=64), nullable=True),
    sa.Column('mobile', sa.String(length=11), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=True),
    sa.Column('at', sa.String(length=27), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_reports'))
    )
    with op.batch_alter_table('message_reports', schema=None) as batch_op:
        batch_op.create_index('ix_message_reports_provider', ['gateway', 'provider_id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=True),
    sa.Column('mobile', sa.String(length=11), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=True),
    sa.Column('locale', sa.String(length=2), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.BigInteger(), nullable=True),
    sa.Column('occurred_at', sa.String(length=27), nullable=False),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.Column('due_at', sa.String(length=27), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('lease_until', sa.String(length=27), nullable=True),
    sa.Column('gateway', sa.String(length=32), nullable=True),
    sa.Column('provider_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('sent_at', sa.String(length=27), nullable=True),
    sa.Column('done_at', sa.String(length=27), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('key', name=op.f('uq_messages_key'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_mobile'), ['mobile'], unique=False)
        batch_op.create_index('ix_messages_provider', ['gateway', 'provider_id'], unique=False)
        batch_op.create_index('ix_messages_status_due', ['status', 'due_at'], unique=False)

    op.create_table('verifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('mobile', sa.String(length=11), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('salt', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.String(length=27), nullable=False),
    sa.Column('expires_at', sa.String(length=27), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('verified_at', sa.String(length=27), nullable=True),
    sa.Column('terminal', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verifications'))
    )
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verifications_mobile'), ['mobile'], unique=False)

    op.create_table('verified_mobiles',
    sa.Column('mobile', sa.String(length=11), nullable=False),
    sa.Column('verified_at', sa.String(length=27), nullable=False),
    sa.Column('verification_id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('mobile', name=op.f('pk_verified_mobiles'))
    )


def downgrade() -> None:
    for table in ('verified_mobiles', 'verifications', 'messages', 'message_reports', 'message_prefs', 'message_jobs',
                  'message_events', 'gift_card_contacts', 'campaigns', 'campaign_members'):
        op.drop_table(table)  # (its indexes go with it)
