"""the audit table; the hub's own chain as the reserved terminal `hub`

Every directory change by a terminal and every decision at the hub's command line is
recorded in `audit`. The hub writes entries of its own (settlements, held
adjustments) in a chain like any terminal's, under the reserved terminal id `hub`:
its row is revoked and has no usable secret, so no request can speak for it. A
database where a real terminal already has that id (in any case) is refused, and
nothing is changed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

from sync.errors import HubError


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    taken = op.get_bind().execute(sa.text("SELECT id FROM terminals WHERE lower(id) = 'hub'")).first()
    if taken is not None:
        raise HubError(f"a terminal is enrolled as {taken[0]!r}, the id the hub now keeps for its own chain; "
                           "nothing was changed. Keep the hub at its version, or remove that terminal first")
    op.create_table('audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('at', sa.String(length=27), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit'))
    )
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index('ix_audit_target', ['target'], unique=False)
    op.execute("INSERT INTO terminals (id, store, secret, revoked, created_at, last_seq, last_hash) "
               "VALUES ('hub', '-', '', true, '2026-12-02T00:00:00.000000Z', 0, '')")


def downgrade() -> None:
    op.execute("DELETE FROM terminals WHERE id = 'hub'")
    op.drop_table('audit')
