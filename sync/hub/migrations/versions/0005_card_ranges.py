"""the member card ranges, set by head office at the hub

Empty: the hub refuses only payment card numbers (ledger.cardpolicy.CardPolicy with
no ranges).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('card_ranges',
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('lengths', sa.String(length=100), nullable=False),
    sa.Column('luhn', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('position', name=op.f('pk_card_ranges'))
    )


def downgrade() -> None:
    op.drop_table('card_ranges')
