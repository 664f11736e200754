"""PostgreSQL: sales and sale_lines partitioned by month of the sale's time
(sync/hub/partitions.py says why and how); SQLite: nothing changes.

The tables are made again as partitioned tables and every row is copied into them,
in the migration's one transaction: a hub that fails here is left as it was. Each
month that holds rows gets its partition; a time outside 2000 to two months from
now (a till's clock far off) stays in the default partition. created_at is compared
byte by byte (COLLATE "C"): the partition bounds are ISO times, and a locale's
collation would not keep a month's range where it reads.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
from datetime import datetime, timezone

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_SALES = """
    id varchar(36) NOT NULL,
    kind varchar(8) NOT NULL,
    original_sale_id varchar(36),
    terminal_code varchar(64) NOT NULL,
    store varchar(64) NOT NULL,
    member_id varchar(36) NOT NULL,
    card_number varchar(32),
    receipt_ref varchar(64) NOT NULL,
    amount bigint NOT NULL,
    ruleset_hash varchar(64) NOT NULL,
    created_at varchar(27) COLLATE "C" NOT NULL,
    actor varchar(64) NOT NULL,
    result_json text NOT NULL,
    received_at varchar(27) NOT NULL"""
_LINES = """
    sale_id varchar(36) NOT NULL,
    line_no integer NOT NULL,
    sku varchar(64) NOT NULL,
    name varchar(200) NOT NULL,
    category varchar(64) NOT NULL,
    quantity bigint NOT NULL,
    unit_price bigint NOT NULL,
    original_line_no integer,
    created_at varchar(27) COLLATE "C" NOT NULL"""
_INDEXES = {
    "sales": [("ix_sales_created_at", "created_at"), ("ix_sales_member_id", "member_id, created_at"),
              ("ix_sales_store", "store, created_at")],
    "sale_lines": [("ix_sale_lines_created_at", "created_at")],
}
_KEYS = {"sales": "id, created_at", "sale_lines": "sale_id, line_no, created_at"}
_PLAIN_KEYS = {"sales": "id", "sale_lines": "sale_id, line_no"}


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    from sync.hub.partitions import make_months, month_of, months_around

    now = datetime.now(timezone.utc)
    for table, columns in (("sales", _SALES), ("sale_lines", _LINES)):
        _set_aside(table)
        op.execute(f'CREATE TABLE "{table}" ({columns}, CONSTRAINT "pk_{table}" PRIMARY KEY ({_KEYS[table]})) '
                   "PARTITION BY RANGE (created_at)")
        op.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
        for name, columns_of in _INDEXES[table]:
            op.execute(f'CREATE INDEX "{name}" ON "{table}" ({columns_of})')
    held = {month_of(m) for m in conn.exec_driver_sql(
        "SELECT DISTINCT left(created_at, 7) FROM sales_unpartitioned").scalars()}
    last = months_around(now)[-1]
    make_months(conn, {m for m in held if m and "2000-01" <= m <= last} | set(months_around(now)))
    for table in ("sales", "sale_lines"):
        op.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}_unpartitioned"')
        op.execute(f'DROP TABLE "{table}_unpartitioned"')


def _set_aside(table: str) -> None:
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_unpartitioned"')
    op.execute(f'ALTER TABLE "{table}_unpartitioned" RENAME CONSTRAINT "pk_{table}" TO "pk_{table}_unpartitioned"')
    for name, _ in _INDEXES[table]:
        op.execute(f'ALTER INDEX "{name}" RENAME TO "{name}_unpartitioned"')


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, columns in (("sales", _SALES), ("sale_lines", _LINES)):
        op.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_partitioned"')
        op.execute(f'ALTER TABLE "{table}_partitioned" RENAME CONSTRAINT "pk_{table}" TO "pk_{table}_partitioned"')
        for name, _ in _INDEXES[table]:
            op.execute(f'ALTER INDEX "{name}" RENAME TO "{name}_partitioned"')
        plain = columns.replace(' COLLATE "C"', "")
        op.execute(f'CREATE TABLE "{table}" ({plain}, CONSTRAINT "pk_{table}" PRIMARY KEY ({_PLAIN_KEYS[table]}))')
        op.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}_partitioned"')
        op.execute(f'DROP TABLE "{table}_partitioned"')  # its partitions with it
        for name, columns_of in _INDEXES[table]:
            op.execute(f'CREATE INDEX "{name}" ON "{table}" ({columns_of})')
