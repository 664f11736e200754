"""a mobile number may belong to two members: a customer enrolled at two branches
while both were offline arrives from the hub as a second member, whose entries and
card must be taken whole; enrolment here still refuses a mobile already taken

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite drops a constraint only by rebuilding the table (env.py turns foreign
    # keys off around it and checks them all before the commit)
    with op.batch_alter_table('members', recreate='always') as batch_op:
        batch_op.drop_constraint('uq_members_mobile', type_='unique')
        batch_op.create_index('ix_members_mobile', ['mobile'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('members', recreate='always') as batch_op:
        batch_op.drop_index('ix_members_mobile')
        batch_op.create_unique_constraint('uq_members_mobile', ['mobile'])
