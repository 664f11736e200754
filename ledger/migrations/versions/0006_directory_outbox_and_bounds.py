"""directory changes (members, cards, gift cards) go to the hub through the same
monotonic outbox as entries, so a clock step back cannot hide them; balances and
gift cards keep what was ever credited, so lifetime sums stay bounded (ledger.limits)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def upgrade() -> None:
    with op.batch_alter_table('outbox', recreate='always') as batch_op:
        batch_op.alter_column('entry_id', existing_type=sa.String(length=36), nullable=True)
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='entry'))
        batch_op.add_column(sa.Column('ref', sa.String(length=36), nullable=True))
        batch_op.create_check_constraint('kind', "kind IN ('entry', 'member', 'card', 'gift_card')")
        batch_op.create_check_constraint('ref_or_entry', "(kind = 'entry') = (entry_id IS NOT NULL)")
    with op.batch_alter_table('balances') as batch_op:
        batch_op.add_column(sa.Column('credited', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('gift_cards') as batch_op:
        batch_op.add_column(sa.Column('loaded', sa.BigInteger(), nullable=False, server_default='0'))
    op.execute("UPDATE balances SET credited = (SELECT coalesce(sum(points), 0) FROM entries "
               "WHERE entries.member_id = balances.member_id AND points > 0)")
    op.execute("UPDATE gift_cards SET loaded = (SELECT coalesce(sum(amount), 0) FROM entries "
               "WHERE entries.gift_card_number = gift_cards.number AND amount > 0)")
    # Before this, directory rows were picked by their own timestamps; one the clock hid
    # may never have reached the hub. Queue this store's members and every card and
    # gift card once: the hub takes an unchanged row as a no-op.
    op.execute("INSERT INTO outbox (kind, ref, created_at) SELECT 'member', id, " + NOW + " FROM members "
               "WHERE store_code IN (SELECT store_code FROM terminals) ORDER BY enrolled_at, id")
    op.execute("INSERT INTO outbox (kind, ref, created_at) SELECT 'card', number, " + NOW + " FROM cards "
               "ORDER BY issued_at, number")
    op.execute("INSERT INTO outbox (kind, ref, created_at) SELECT 'gift_card', number, " + NOW + " FROM gift_cards "
               "ORDER BY issued_at, number")


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE kind <> 'entry'")
    with op.batch_alter_table('gift_cards') as batch_op:
        batch_op.drop_column('loaded')
    with op.batch_alter_table('balances') as batch_op:
        batch_op.drop_column('credited')
    with op.batch_alter_table('outbox', recreate='always') as batch_op:
        batch_op.drop_constraint('ref_or_entry', type_='check')
        batch_op.drop_constraint('kind', type_='check')
        batch_op.drop_column('ref')
        batch_op.drop_column('kind')
        batch_op.alter_column('entry_id', existing_type=sa.String(length=36), nullable=False)
